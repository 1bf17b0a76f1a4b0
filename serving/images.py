"""Images as the served models take them: encoded PNG/JPEG/GIF/BMP bytes, checked before use.

Only PIL and numpy: the clients and the app check (and encode) images with this module without
loading TensorFlow. `header_size` reads an image's size from its header as the exported models
do before decoding (`transform.preprocessing.image_header_sizes`), so that the app and the local
server refuse an oversized image with the same rule, before decoding it.
"""

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from serving.errors import ServingError, too_large

ImageInput = str | Path | bytes | np.ndarray


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


# The SOFn markers of JPEG (frame headers, which carry the size); see image_header_sizes.
_JPEG_FRAMES = frozenset(
    (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
)


def header_size(data: bytes) -> tuple | None:
    """(format, width, height) from the header of a PNG, JPEG, GIF or BMP (recognized by the
    magic bytes TensorFlow's decode_image uses), without decoding it; (format, None, None) for a
    JPEG whose frame size cannot be found before its image data; None for other data."""
    head = data[:26].ljust(26, b"\0")
    if data.startswith(b"\xff\xd8\xff"):
        return ("JPEG", *_jpeg_size(data))
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ("PNG", *struct.unpack(">II", head[16:24]))
    if data.startswith(b"GIF8"):
        return ("GIF", *struct.unpack("<HH", head[6:10]))
    if data.startswith(b"BM"):
        width, height = struct.unpack("<ii", head[18:26])
        return ("BMP", abs(width), abs(height))
    return None


def _jpeg_size(data: bytes) -> tuple:
    """(width, height) of a JPEG's first frame header, walking its marker segments; (None, None)
    at anything that is not a marker, at the scan data (SOS) or at the end."""
    position = 2
    while position + 4 <= len(data):
        segment = data[position : position + 9].ljust(9, b"\0")
        marker = segment[1]
        if segment[0] != 0xFF or marker == 0xDA:
            break
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", segment[5:9])
            return width, height
        if marker == 0xFF:
            position += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD9:
            position += 2
        else:
            position += 2 + struct.unpack(">H", segment[2:4])[0]
    return None, None


def check_header(data: bytes, max_pixels: int, name: str = "image", note: str = "") -> None:
    """Refuses, from its header alone, an image of more than `max_pixels` pixels (413 /
    RESOURCE_EXHAUSTED) or a JPEG whose size cannot be read (400); `note` ends the message."""
    size = header_size(data)
    if size is None:
        return  # not an image the models decode: decoding it says so
    _, width, height = size
    if width is None:
        raise ServingError.from_http(
            400, f"{name}: JPEG without a readable frame size (SOFn marker) before its image data"
        )
    if width * height > max_pixels:
        raise too_large(
            f"{name} is {width}x{height} pixels, more than the limit of {max_pixels} "
            f"pixels per image{note}"
        )
