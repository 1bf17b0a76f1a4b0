"""Exports a trained classifier as a SavedModel with the transform graph baked in.

Two signatures share one computation:
- `serving_default`: `image_bytes` (encoded PNG/JPEG of any size) -> prediction, for TF Serving.
- `from_examples`: serialized tf.Example -> prediction, for TFMA in the Evaluator.
Both return `character`, `class_index`, `confidence` and `probabilities`.
"""

import keras
import tensorflow as tf

from data.features import IMAGE_KEY, LABEL_KEY

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "from_examples"
IMAGE_BYTES_INPUT = "image_bytes"


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

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tft_layer)
    archive.add_endpoint(
        SERVING_SIGNATURE,
        serve_image_bytes,
        [tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)],
    )
    archive.add_endpoint(
        EXAMPLES_SIGNATURE, serve_examples, [tf.TensorSpec([None], tf.string, name="examples")]
    )
    archive.write_out(path, verbose=False)
