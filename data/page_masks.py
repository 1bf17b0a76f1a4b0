"""Target masks of the line detector: a page's line polygons -> one class per pixel at S x S.

The page is stretched (not padded) to `size` x `size`, the detector's input (common.pages).
Lines alternate in reading order: the first is ODD_LINE, the second EVEN_LINE, and so on, so
neighbouring lines carry different classes even where they touch. A pixel inside two or more
line polygons is BACKGROUND: overlapping neighbours get a gap instead of one merged region, and
no pixel is claimed by two lines. Pixels outside every polygon are BACKGROUND.

A polygon is drawn with its outline (PIL's fill + outline), so even a line thinner than one
output pixel keeps at least a thin trace rather than vanishing from the target.
"""

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from common.pages import BACKGROUND, EVEN_LINE, ODD_LINE

Points = Sequence[tuple[float, float]]


def line_class(index: int) -> int:
    """The class of the line at `index` (0-based) in reading order."""
    return ODD_LINE if index % 2 == 0 else EVEN_LINE


def box_points(x: float, y: float, width: float, height: float) -> list[tuple[float, float]]:
    """The corners of a box given as left, top, width, height (the last pixel inside, as ALTO's
    and IAM's boxes count), clockwise from the top left."""
    right, bottom = x + width - 1, y + height - 1
    return [(x, y), (right, y), (right, bottom), (x, bottom)]


def line_masks(polygons: Sequence[Points], page_size: tuple[int, int], size: int) -> np.ndarray:
    """bool [lines, size, size]: each polygon (page pixel coordinates, (x, y) = the centre of
    pixel column x, row y) rasterized on the page stretched from `page_size` (width, height)."""
    width, height = page_size
    if width < 1 or height < 1 or size < 1:
        raise ValueError(f"need a page size and a mask size of at least 1, got {page_size}, {size}")
    sx, sy = size / width, size / height
    masks = np.zeros((len(polygons), size, size), dtype=bool)
    for index, points in enumerate(polygons):
        if len(points) < 3:
            raise ValueError(f"line {index}: a polygon needs at least 3 points, got {len(points)}")
        canvas = Image.new("1", (size, size), 0)
        # PIL truncates coordinates: round to the nearest output pixel centre instead
        scaled = [(round((x + 0.5) * sx - 0.5), round((y + 0.5) * sy - 0.5)) for x, y in points]
        ImageDraw.Draw(canvas).polygon(scaled, fill=1, outline=1)
        masks[index] = np.asarray(canvas, dtype=bool)
    return masks


def page_mask(polygons: Sequence[Points], page_size: tuple[int, int], size: int) -> np.ndarray:
    """uint8 [size, size] of BACKGROUND / ODD_LINE / EVEN_LINE for lines in reading order (see
    the module docstring for alternation and overlaps)."""
    return combine_lines(line_masks(polygons, page_size, size))


def combine_lines(masks: np.ndarray) -> np.ndarray:
    """The page mask of line_masks' output: a pixel of exactly one line gets its class."""
    mask = np.full(masks.shape[1:], BACKGROUND, dtype=np.uint8)
    if not len(masks):
        return mask
    alone = masks.sum(axis=0) == 1
    owner = masks.argmax(axis=0)
    classes = np.array([line_class(i) for i in range(len(masks))], dtype=np.uint8)
    mask[alone] = classes[owner[alone]]
    return mask
