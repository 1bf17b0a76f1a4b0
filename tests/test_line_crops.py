"""data.line_crops.load_gray: every page image that cannot be read, including decompression
bombs, is a DatasetError naming the file, never a traceback or a huge allocation."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from data.errors import DatasetError
from data.line_crops import load_gray


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` gray pixels and that has no image data:
    a few dozen bytes that PIL refuses (or would try to decode) by the size alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_reads_a_page_as_gray(tmp_path):
    path = tmp_path / "page.png"
    Image.new("RGB", (30, 20), (200, 100, 0)).save(path)
    page = load_gray(path)
    assert page.shape == (20, 30) and page.dtype == np.uint8


def test_a_header_declaring_a_gigantic_page_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bomb page.png"
    path.write_bytes(png_header_only(40000, 40000))
    with pytest.raises(DatasetError, match=r"bomb page\.png is too large to read"):
        load_gray(path)


def test_a_page_over_the_pixel_limit_that_pil_only_warns_about_is_refused(tmp_path, monkeypatch):
    # Between MAX_IMAGE_PIXELS and twice it PIL warns and decodes; we refuse instead.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = tmp_path / "large.png"
    Image.new("L", (40, 30), 255).save(path)  # 1,200 pixels: over the limit, under twice it
    with pytest.raises(DatasetError, match=r"large\.png is too large to read"):
        load_gray(path)
    Image.new("L", (40, 20), 255).save(path)  # 800 pixels: fine
    assert load_gray(path).shape == (20, 40)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), (b"not an image", "not readable"), (b"\x89PNG\r\n", "not readable")],
)
def test_missing_or_unreadable_pages_name_the_file(tmp_path, content, message):
    path = tmp_path / "page.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError, match=f"page.png.*{message}|{message}.*page.png"):
        load_gray(path)
