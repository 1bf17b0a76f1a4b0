"""What every real-handwriting reader yields, and the page-image operations they share.

Readers (data.pagexml, data.alto, data.iam) yield LineRecord for each usable line and
SkippedLine (file, line id, reason) for each line they cannot crop, so the converter can count
and report skips instead of losing lines silently or stopping a long conversion on one bad line.
Images stay as in the source: 2-D uint8 grayscale, dark ink on light paper.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from data.errors import DatasetError

# Paper is most of a page and ink is dark, so a high percentile of the gray levels is the paper
# tone without being thrown by a few specks of white: what pixels outside a line polygon become.
BACKGROUND_PERCENTILE = 90


@dataclass(frozen=True)
class LineRecord:
    image: np.ndarray  # uint8 [H, W], as in the source (dark ink on light background)
    text: str  # the transcription as in the source (not yet mapped to the charset)
    source: str  # "pagexml", "alto" or "iam"
    document: str
    page: str  # unique within a source folder: the split unit
    line_id: str
    writer: str = ""  # empty when unknown


@dataclass(frozen=True)
class SkippedLine:
    file: str
    line_id: str
    reason: str


def load_gray(path: Path) -> np.ndarray:
    """A page image as uint8 [H, W]; a missing or unreadable image raises DatasetError naming it.

    So does an image of more than PIL's Image.MAX_IMAGE_PIXELS (89 Mpixels, a 600 dpi A3 scan
    is 70): PIL only warns below twice that, but decoding it could exhaust memory, and such a
    header is more likely a corrupt file or a decompression bomb than a page.
    """
    if not path.is_file():
        raise DatasetError(f"image {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return np.asarray(image.convert("L"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DatasetError(f"image {path} is too large to read: {e}") from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DatasetError(f"image {path} is not readable: {e}") from e


def page_background(page: np.ndarray) -> int:
    return int(np.percentile(page, BACKGROUND_PERCENTILE))


def crop_polygon(page: np.ndarray, points, background: int) -> np.ndarray | None:
    """Bounding-box crop of the polygon `points` [(x, y), ...] with pixels outside it set to
    `background`; the part outside the page is clipped. None when no pixel is on the page."""
    points = [(round(x), round(y)) for x, y in points]  # pixel centres; see _clip_box
    box = _clip_box(
        page,
        *(min(p[i] for p in points) for i in (0, 1)),
        *(max(p[i] for p in points) + 1 for i in (0, 1)),
    )
    if box is None or len(points) < 3:
        return None
    left, top, right, bottom = box
    mask = Image.new("1", (right - left, bottom - top), 0)
    ImageDraw.Draw(mask).polygon([(x - left, y - top) for x, y in points], fill=1, outline=1)
    inside = np.asarray(mask, dtype=bool)
    if not inside.any():
        return None
    return np.where(inside, page[top:bottom, left:right], np.uint8(background))


def crop_box(
    page: np.ndarray, x: float, y: float, width: float, height: float
) -> np.ndarray | None:
    """The rectangle clipped to the page, or None when it has no pixel on the page."""
    box = _clip_box(page, x, y, x + width, y + height)
    return None if box is None else page[box[1] : box[3], box[0] : box[2]]


def _clip_box(page: np.ndarray, left, top, right, bottom):
    """Integer (left, top, right, bottom), right/bottom exclusive, within the page, or None.
    Coordinates are rounded: scaled ones (ALTO units, DPI) are off by float error, not by pixels."""
    height, width = page.shape
    left, top = max(0, round(left)), max(0, round(top))
    right, bottom = min(width, round(right)), min(height, round(bottom))
    return (left, top, right, bottom) if left < right and top < bottom else None
