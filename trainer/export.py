"""Exports trained models as SavedModels with two signatures sharing one computation:

- `serving_default`: `image_bytes` (encoded PNG/JPEG of any size) -> prediction, for TF Serving.
- `from_examples`: serialized tf.Example -> prediction, for TFMA in the Evaluator.

Character models carry the Transform graph and return `character`, `class_index`, `confidence`
and `probabilities`. Line models return `text`, `confidence` and `decoded` (class indices padded
with -1); their images are normalized by `transform.preprocessing.decode_images` directly, since
their Transform graph draws lines from text and holds the glyph banks, which serving never needs.
"""

import keras
import tensorflow as tf

from common.signatures import (
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    IMAGE_BYTES_INPUT,
    SERVING_SIGNATURE,
)
from data.features import IMAGE_KEY, LABEL_KEY
from transform.preprocessing import decode_images


def export_classifier(model: keras.Model, tf_transform_output, characters: list, path: str) -> None:
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
        return predict({IMAGE_KEY: tf.reshape(image_bytes, [-1, 1])})

    def serve_examples(serialized):
        return predict(tf.io.parse_example(serialized, raw_spec))

    _write(path, [model, tft_layer], serve_image_bytes, serve_examples)


def export_line_model(
    read, model: keras.Model, image_spec, path: str, stretch_contrast: bool = False
) -> None:
    """`read(images)` -> {"text", "confidence", "decoded"} is the model kind's reading of
    normalized line images shaped like `image_spec` (the transformed image feature); encoded
    images are normalized as the dataset's Transform did (`stretch_contrast` for real scans)."""
    image_height, image_width = image_spec.shape[:2]

    def serve_image_bytes(image_bytes):
        return read(decode_images(image_bytes, image_height, image_width, left_align=True,
                                  stretch_contrast=stretch_contrast))

    def serve_examples(serialized):
        return read(tf.io.parse_example(serialized, {IMAGE_KEY: image_spec})[IMAGE_KEY])

    _write(path, [model], serve_image_bytes, serve_examples)


def _write(path: str, tracked: list, serve_image_bytes, serve_examples) -> None:
    archive = keras.export.ExportArchive()
    for resource in tracked:
        archive.track(resource)
    archive.add_endpoint(
        SERVING_SIGNATURE,
        serve_image_bytes,
        [tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)],
    )
    archive.add_endpoint(
        EXAMPLES_SIGNATURE, serve_examples, [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)]
    )
    archive.write_out(path, verbose=False)


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
