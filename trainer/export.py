"""Exports trained models as SavedModels with two signatures sharing one computation:

- `serving_default`: `image_bytes` (encoded PNG/JPEG of any size) -> prediction, for TF Serving.
- `from_examples`: serialized tf.Example -> prediction, for TFMA in the Evaluator.

Character models carry the Transform graph and return `character`, `class_index`, `confidence`
and `probabilities`. Line models return `text`, `confidence` and `decoded` (class indices padded
with -1); their images are normalized by `transform.preprocessing.decode_images` directly, since
their Transform graph draws lines from text and holds the glyph banks, which serving never needs.
Any other model of normalized images (the line detector) exports through `export_image_model`
with its own normalization and outputs.

`serving_default` bounds the cost of a request before decoding anything
(`transform.preprocessing.check_image_headers`): a request of more than `max_batch` images, or an
image whose header declares more than `max_pixels` pixels, fails with INVALID_ARGUMENT naming the
limit (and the image's index); the defaults are DEFAULT_MAX_PIXELS (16 Mi pixels, 4096 x 4096)
and DEFAULT_MAX_BATCH (64). This protects TF Serving itself, which has no such limits.

Each export also writes TF Serving's warm-up requests (`assets.extra/tf_serving_warmup_requests`,
a TFRecord of PredictionLog): one `serving_default` request of one small PNG, which TF Serving
(and the local server) run before a version is marked AVAILABLE, so that the first user request
on a new version does not pay for tracing and the first kernel runs.

Networks trained with CTC also carry two loadable functions that are not signatures (TF Serving
and the clients never see them): `ctc_posteriors` (encoded images, checked like
`serving_default`) and `ctc_posteriors_from_examples`, both returning the per-step softmax
posteriors [B, T, classes] the model decodes, so that an ensemble (trainer/ensemble.py) can
average two models' posteriors and decode once.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from common.signatures import (
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    IMAGE_BYTES_INPUT,
    SERVING_SIGNATURE,
)
from data.features import IMAGE_KEY, LABEL_KEY
from trainer.decoding import ctc_loss
from transform.preprocessing import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_PIXELS,
    check_image_headers,
    decode_images,
)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# The loadable functions of CTC networks (see above): encoded images, or serialized tf.Examples,
# -> per-step posteriors.
CTC_POSTERIORS = "ctc_posteriors"
CTC_POSTERIORS_FROM_EXAMPLES = "ctc_posteriors_from_examples"


def export_classifier(
    model: keras.Model,
    tf_transform_output,
    characters: list,
    path: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> None:
    tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    raw_spec.pop(LABEL_KEY)
    vocabulary = tf.constant(list(characters))

    def predict(raw_features: dict) -> dict:
        transformed = tft_layer(raw_features)
        probabilities = model(transformed[IMAGE_KEY], training=False)
        class_index = tf.argmax(probabilities, axis=-1)
        return {
            "character": tf.gather(vocabulary, class_index),
            "class_index": class_index,
            "confidence": tf.reduce_max(probabilities, axis=-1),
            "probabilities": probabilities,
        }

    def serve_image_bytes(image_bytes):
        image_bytes = check_image_headers(image_bytes, max_pixels, max_batch)
        return predict({IMAGE_KEY: tf.reshape(image_bytes, [-1, 1])})

    def serve_examples(serialized):
        return predict(tf.io.parse_example(serialized, raw_spec))

    _write(path, [model, tft_layer], serve_image_bytes, serve_examples)
    write_warmup_requests(path, warmup_png(28, 28))


def export_line_model(
    read,
    model: keras.Model,
    image_spec,
    path: str,
    stretch_contrast: bool = False,
    **limits: int,
) -> None:
    """`read(images)` -> {"text", "confidence", "decoded"} is the model kind's reading of
    normalized line images shaped like `image_spec` (the transformed image feature); encoded
    images are normalized as the dataset's Transform did (`stretch_contrast` for real scans).
    `limits`: export_image_model's max_pixels and max_batch."""
    image_height, image_width = image_spec.shape[:2]

    def decode(image_bytes):
        return decode_images(
            image_bytes,
            image_height,
            image_width,
            left_align=True,
            stretch_contrast=stretch_contrast,
        )

    export_image_model(read, decode, model, image_spec, path, **limits)


def export_image_model(
    predict,
    decode,
    model: keras.Model,
    image_spec,
    path: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> None:
    """Exports `predict(images)` -> {output name: tensor} of normalized images shaped like
    `image_spec` (the transformed image feature): `serving_default` checks the encoded images'
    headers, then normalizes them with `decode(image_bytes)` as the dataset's Transform did;
    `from_examples` parses already normalized images (TFMA reads Transform's output)."""
    image_height, image_width = image_spec.shape[:2]

    def images_from_bytes(image_bytes):
        return decode(check_image_headers(image_bytes, max_pixels, max_batch))

    def images_from_examples(serialized):
        return tf.io.parse_example(serialized, {IMAGE_KEY: image_spec})[IMAGE_KEY]

    def serve_image_bytes(image_bytes):
        return predict(images_from_bytes(image_bytes))

    def serve_examples(serialized):
        return predict(images_from_examples(serialized))

    functions = {}
    # A network compiled with the CTC loss emits per-step logits: expose their posteriors.
    if getattr(model, "loss", None) is ctc_loss:

        def posteriors(images):
            return keras.ops.softmax(model(images, training=False))

        functions = {
            CTC_POSTERIORS: lambda image_bytes: posteriors(images_from_bytes(image_bytes)),
            CTC_POSTERIORS_FROM_EXAMPLES: lambda examples: posteriors(
                images_from_examples(examples)
            ),
        }
    _write(path, [model], serve_image_bytes, serve_examples, functions)
    write_warmup_requests(path, warmup_png(image_height, image_width))


def _write(
    path: str, tracked: list, serve_image_bytes, serve_examples, functions: dict | None = None
) -> None:
    """Writes the two signatures, and `functions` ({name: fn of one batch of strings}) as
    loadable functions of the SavedModel that are not signatures."""
    archive = keras.export.ExportArchive()
    for resource in tracked:
        archive.track(resource)
    for name, fn in (functions or {}).items():
        # What add_endpoint does, minus the signature: ExportArchive has no public way to save
        # a function that TF Serving should not serve.
        spec = tf.TensorSpec([None], tf.string)
        setattr(archive._tf_trackable, name, tf.function(fn, input_signature=[spec]))
    archive.add_endpoint(
        SERVING_SIGNATURE,
        serve_image_bytes,
        [tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)],
    )
    archive.add_endpoint(
        EXAMPLES_SIGNATURE, serve_examples, [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)]
    )
    archive.write_out(path, verbose=False)


def warmup_png(height: int, width: int) -> bytes:
    """A white `height` x `width` PNG with a dark bar: a valid image of the model's geometry."""
    image = np.full((height, width, 1), 255, np.uint8)
    image[height // 4 : height - height // 4, width // 8 : width - width // 8] = 20
    return tf.io.encode_png(image).numpy()


def write_warmup_requests(path: str, image: bytes) -> str:
    """Writes TF Serving's warm-up file into the SavedModel at `path`: one PredictionLog whose
    PredictRequest runs `serving_default` on `image`. Returns the file's path."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = SERVING_SIGNATURE
    request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    target = os.path.join(path, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(target))
    with tf.io.TFRecordWriter(target) as writer:
        writer.write(log.SerializeToString())
    return target


def export_untrained_line_model(config: dict, path, seed: int = 0) -> str:
    """Exports the line model of `config` (an experiment config dict) with random weights, as the
    Trainer would export it: for serving contract tests and benchmarks that need no training."""
    from trainer.config import ExperimentConfig
    from trainer.datasets import DATASETS
    from trainer.models import MODEL_KINDS, build_model

    experiment = ExperimentConfig.from_dict(config)
    keras.utils.set_random_seed(seed)
    shape = DATASETS[experiment.dataset].image_shape(experiment.dataset_args)
    model = build_model(experiment, shape)
    image_spec = tf.io.FixedLenFeature(list(shape), tf.float32)
    MODEL_KINDS[experiment.model].export_for_images(model, experiment, image_spec, str(path))
    return str(path)
