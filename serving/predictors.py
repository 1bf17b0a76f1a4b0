"""Predictors: load a pushed SavedModel and read images in process, without a server.

A pushed model directory is `<serving dir>/<model name>/<integer version>/`; pointing a predictor
at the model name directory loads its newest version, as TF Serving's default policy would.
"""

import io
from pathlib import Path
from typing import Union

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from common.signatures import IMAGE_BYTES_INPUT, SERVING_SIGNATURE

ImageInput = Union[str, Path, bytes, np.ndarray]


class PredictionError(ValueError):
    """An input the model cannot read, or a model directory that holds no model."""


def resolve_model_dir(path: Union[str, Path]) -> Path:
    """`path` itself if it is a SavedModel, else its highest integer-named version."""
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = [p for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").exists()]
    if not versions:
        raise PredictionError(f"{path}: neither a SavedModel nor a directory of model versions")
    return max(versions, key=lambda p: int(p.name))


def encode_image(image: ImageInput) -> bytes:
    """PNG/JPEG bytes for a file path, encoded bytes, or a grayscale array (uint8, or float in
    [0, 1]); raises PredictionError naming the input when it is not a readable image."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise PredictionError(f"image file not found: {path}")
        data, name = path.read_bytes(), str(path)
    elif isinstance(image, bytes):
        data, name = image, f"{len(image)} bytes of image data"
    elif isinstance(image, np.ndarray):
        return _encode_array(image)
    else:
        raise PredictionError(f"expected an image path, bytes or array, got {type(image).__name__}")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise PredictionError(f"{name}: not a readable image ({e})") from None
    return data


def _encode_array(array: np.ndarray) -> bytes:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or min(array.shape) == 0:
        raise PredictionError(f"image array must be 2-D grayscale (H, W), got shape {array.shape}")
    if array.dtype != np.uint8:
        in_range = np.issubdtype(array.dtype, np.floating) and ((array >= 0) & (array <= 1)).all()
        if not in_range:
            raise PredictionError(
                f"image array must be uint8, or float in [0, 1]; got {array.dtype} "
                f"in [{array.min()}, {array.max()}]"
            )
        array = np.round(array * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class _Predictor:
    """Reads images with a pushed model's `serving_default` signature."""

    OUTPUT = ""  # the signature's text output

    def __init__(self, model_dir: Union[str, Path]):
        self.model_dir = resolve_model_dir(model_dir)
        self._serve = tf.saved_model.load(str(self.model_dir)).signatures[SERVING_SIGNATURE]

    def predict(self, image: ImageInput) -> tuple:
        """(text, confidence) for one image."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: list) -> list:
        """[(text, confidence), ...] for several images, in one model call."""
        encoded = tf.constant([encode_image(image) for image in images])
        outputs = self._serve(**{IMAGE_BYTES_INPUT: encoded})
        texts = outputs[self.OUTPUT].numpy()
        confidences = outputs["confidence"].numpy()
        return [(t.decode("utf-8"), float(p)) for t, p in zip(texts, confidences)]


class CharacterPredictor(_Predictor):
    """Reads single handwritten characters with a pushed character model."""

    OUTPUT = "character"


class LinePredictor(_Predictor):
    """Reads lines of handwriting (any width) with a pushed line model."""

    OUTPUT = "text"
