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
from trainer.lines import START_TOKEN
from trainer.decoding import ctc_decode, indices_to_text, per_position_decode
from trainer.networks.line_attention import greedy_decode
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


def export_line_model(model: keras.Model, config, transformed_spec: dict, path: str) -> None:
    image_height, image_width = transformed_spec[IMAGE_KEY].shape[:2]
    image_spec = {IMAGE_KEY: transformed_spec[IMAGE_KEY]}

    def serve_image_bytes(image_bytes):
        images = decode_images(image_bytes, image_height, image_width, left_align=True)
        return read_lines(model, config, images)

    def serve_examples(serialized):
        return read_lines(model, config, tf.io.parse_example(serialized, image_spec)[IMAGE_KEY])

    _write(path, [model], serve_image_bytes, serve_examples)


def read_lines(model: keras.Model, config, images: tf.Tensor) -> dict:
    """Text, confidence and class indices read from normalized line images by `config.model`."""
    max_length = config.dataset_args["max_length"]
    if config.model == "LineModelCtc":
        probabilities = keras.ops.softmax(model(images, training=False))
        decoded, confidence = ctc_decode(
            probabilities, config.model_args["decoding"], config.model_args["beam_width"]
        )
    else:
        if config.model == "LineModelAttention":
            probabilities = greedy_decode(model, images, max_length, START_TOKEN)
        else:
            probabilities = model(images, training=False)
        decoded, confidence = per_position_decode(probabilities)
    return {"text": indices_to_text(decoded), "confidence": confidence, "decoded": decoded}


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
