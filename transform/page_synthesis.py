"""Synthetic pages for the line detector: EMNIST lines stacked on paper with random margins,
indents and spacing, each with its ink box and text.

They are the page data of the embedded sample (drawn from the EMNIST sample glyphs and the
shipped sentences, so a fresh clone trains a detector offline) and pretraining data for real
pages. Lines are FSDL's EmnistLines, drawn by transform.line_synthesis from windows of the
sentence corpus (data.sentences). The space between two lines' strips is a random fraction of a
glyph height in GAP_RANGE; below 0 the strips overlap, so some lines touch or overlap as in
handwriting, which the odd/even alternation and the overlap rule of data.page_masks are for.

Pages are drawn when the dataset is prepared, not in the Transform graph: they become ordinary
page records (data.pages.PageRecord -> page_example), so synthetic and real pages share one
schema, one Transform, one served normalization and one mask rasterizer. The module sits in
transform/ because it draws with transform.line_synthesis (data/ does not import transform/).
Deterministic: the same sentences, bank, seed and arguments give the same pages.
"""

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from data.page_masks import box_points
from data.pages import PageRecord
from data.sentences import sentence_windows
from data.xml_pages import PageLine
from transform.line_synthesis import GlyphBank, synthesize_lines
from transform.preprocessing import IMAGE_SIZE

PAGE_ASPECT = 1.41  # height / width of a sheet (A4, Letter): a page is at least this tall
GAP_RANGE = (-0.3, 1.2)  # space between line strips, in glyph heights
MARGIN_RANGE = (0.5, 4.0)  # page margins, in glyph heights
MAX_INDENT = 2 * IMAGE_SIZE  # a line starts up to this far right of the left margin
_CHUNK = 256  # lines drawn per call (256 lines of 20 glyphs: 18 MB of float32)


def synthetic_pages(
    sentences: list[str],
    bank: GlyphBank,
    count: int,
    seed: int,
    max_length: int = 20,
    max_lines: int = 24,
    page_prefix: str = "page",
) -> Iterator[PageRecord]:
    """`count` pages of 1..`max_lines` lines of at most `max_length` characters, dark ink on
    white paper, one at a time (a page is about a megabyte); page ids `<page_prefix>-<index>`,
    source and document "emnist"."""
    if count < 0 or max_lines < 1:
        raise ValueError(f"need count >= 0 and max_lines >= 1, got {count} and {max_lines}")
    rng = np.random.default_rng(seed)
    line_counts = rng.integers(1, max_lines, endpoint=True, size=count)
    texts = sentence_windows(sentences, max_length, int(line_counts.sum()), seed)
    seeds = rng.integers(0, 2**62, size=len(texts))
    ends = np.cumsum(line_counts)
    strips: list = []  # drawn lines not yet placed: those of the next pages
    for index, (n, end) in enumerate(zip(line_counts, ends)):
        if len(strips) < n:
            drawn = end - n + len(strips)
            chunk = slice(drawn, drawn + max(_CHUNK, n - len(strips)))
            strips += _draw_lines(texts[chunk], seeds[chunk], bank, max_length)
        lines = list(zip(texts[end - n : end], strips[:n]))
        del strips[:n]
        image, page_lines = _compose(lines, rng, max_length)
        yield PageRecord(image, page_lines, "emnist", "emnist", f"{page_prefix}-{index}")


def _draw_lines(texts: list[str], seeds: np.ndarray, bank: GlyphBank, max_length: int) -> list:
    """uint8 strips [28, max_length * 28], white ink on black, one per text."""
    images, _ = synthesize_lines(tf.constant(texts), tf.constant(seeds, tf.int64), bank, max_length)
    return list(np.round(images.numpy() * 255).astype(np.uint8))


def _compose(lines: list, rng: np.random.Generator, max_length: int) -> tuple:
    """(page uint8 [H, W] dark on white, [PageLine] with ink boxes) of (text, strip) pairs."""
    left, top, right, bottom = np.round(IMAGE_SIZE * rng.uniform(*MARGIN_RANGE, size=4)).astype(int)
    width = left + MAX_INDENT + max_length * IMAGE_SIZE + right
    placed, y = [], top
    for text, strip in lines:
        x = left + int(rng.integers(0, MAX_INDENT, endpoint=True))
        placed.append((text, strip, x, y))
        y += IMAGE_SIZE + round(IMAGE_SIZE * rng.uniform(*GAP_RANGE))
    last_bottom = placed[-1][3] + IMAGE_SIZE
    height = max(round(width * PAGE_ASPECT), last_bottom + bottom)
    canvas = np.zeros((height, width), np.uint8)
    page_lines = []
    for index, (text, strip, x, y) in enumerate(placed):
        region = canvas[y : y + IMAGE_SIZE, x : x + strip.shape[1]]
        np.maximum(region, strip, out=region)
        rows, columns = np.flatnonzero(strip.any(axis=1)), np.flatnonzero(strip.any(axis=0))
        if len(rows):  # a line of blank glyphs has no box; it cannot be detected either
            box = box_points(
                x + columns[0], y + rows[0], columns[-1] - columns[0] + 1, rows[-1] - rows[0] + 1
            )
            page_lines.append(PageLine(f"l{index}", text, box))
    return 255 - canvas, page_lines
