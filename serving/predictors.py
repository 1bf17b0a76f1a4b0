"""Predictors: load a pushed SavedModel and read images in process, without a server.

A pushed model directory is `<serving dir>/<model name>/<integer version>/`; pointing a predictor
at the model name directory loads its newest version, as TF Serving's default policy would.
"""

from pathlib import Path

import tensorflow as tf

from common import push_layout
from common.signatures import DEFAULT_MAX_BATCH, IMAGE_BYTES_INPUT, SERVING_SIGNATURE
from serving.images import ImageInput, PredictionError, encode_image

__all__ = [
    "CharacterPredictor",
    "ImageInput",
    "LinePredictor",
    "PredictionError",
    "encode_image",
    "resolve_model_dir",
]


def resolve_model_dir(path: str | Path) -> Path:
    """`path` itself if it is a SavedModel, else its newest version holding one."""
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = [
        version
        for version in push_layout.list_versions(path)
        if (path / str(version) / "saved_model.pb").exists()
    ]
    if not versions:
        raise PredictionError(f"{path}: neither a SavedModel nor a directory of model versions")
    return Path(push_layout.version_dir(path, versions[-1]))


class _Predictor:
    """Reads images with a pushed model's `serving_default` signature."""

    OUTPUT = ""  # the signature's text output

    def __init__(self, model_dir: str | Path):
        self.model_dir = resolve_model_dir(model_dir)
        self._serve = tf.saved_model.load(str(self.model_dir)).signatures[SERVING_SIGNATURE]

    def predict(self, image: ImageInput) -> tuple:
        """(text, confidence) for one image."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: list) -> list:
        """[(text, confidence), ...] for several images, in model calls of at most
        DEFAULT_MAX_BATCH images (the exported signature refuses larger requests)."""
        results = []
        for start in range(0, len(images), DEFAULT_MAX_BATCH):
            chunk = images[start : start + DEFAULT_MAX_BATCH]
            outputs = self._serve(
                **{IMAGE_BYTES_INPUT: tf.constant([encode_image(i) for i in chunk])}
            )
            texts, confidences = outputs[self.OUTPUT].numpy(), outputs["confidence"].numpy()
            results += [(t.decode("utf-8"), float(p)) for t, p in zip(texts, confidences)]
        return results


class CharacterPredictor(_Predictor):
    """Reads single handwritten characters with a pushed character model."""

    OUTPUT = "character"


class LinePredictor(_Predictor):
    """Reads lines of handwriting (any width) with a pushed line model."""

    OUTPUT = "text"
