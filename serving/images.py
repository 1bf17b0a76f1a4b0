"""Images as the served models take them: encoded PNG/JPEG/GIF/BMP bytes, checked before use.

Only PIL and numpy: the clients and the app check (and encode) images with this module without
loading TensorFlow.
"""

import io
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

ImageInput = Union[str, Path, bytes, np.ndarray]


class PredictionError(ValueError):
    """An input the model cannot read, or a model directory that holds no model."""


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
