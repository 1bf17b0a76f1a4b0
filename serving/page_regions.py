"""Line regions from the line detector's per-pixel class probabilities (common.pages).

The detector labels each pixel of the page, stretched to S x S, as background, odd line or even
line. FSDL's lab 5 dilates each line class, thresholds it with Otsu and keeps contours' bounding
boxes; boxes of slanted or touching lines then overlap and fragments become lines of their own.
Here, per line class:

1. a pixel is "line" when P(odd) + P(even) passes `threshold`, and takes the line class that is
   likelier on average along its row nearby (`class_smoothing`: a line has one class along its
   length, however a detector wavers); a short horizontal closing joins the gaps between words
   (never rows: lines stay apart);
2. connected components of each class are the candidates, so two touching lines, which the
   detector gives alternating classes, stay two lines;
3. candidates are grouped, largest first: a piece at the line's height, within the line or
   beside it (a line broken at a wide gap, or where the detector switched classes; of the same
   class, enough rows shared will do) and a small fragment just above or below a line it
   overlaps horizontally (an i-dot, a descender; not a long piece, which is a short line squeezed
   under a long one, or a sliver of a line between two others) join that line, judged by the
   line's own rows where the piece is (a slanted line's box would take in its neighbours); what
   joins nothing and is smaller than `min_area` is dropped as noise, and a "line" thinner than
   `sliver` times the median line height (the uncertain band between two lines) joins the
   nearest line or is dropped;
4. each line becomes one polygon following its upper and lower edge column by column, padded
   by `padding` line heights (with the 0.7 threshold a detector's regions are tight: 0.2 gave the
   best detection on Hooker train pages and the best page CER, docs/pages.md), scaled from S x S
   back to the page and clipped to it, and the lines are ordered top to bottom.

Light module: numpy and scipy only, so clients run it without TensorFlow.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from common.pages import EVEN_LINE, ODD_LINE, PAGE_CLASSES

ELONGATED = 3  # width / height from which a piece is a line of its own, never a fragment


@dataclass(frozen=True)
class RegionOptions:
    """The rules' settings; the defaults were chosen on Hooker train pages (docs/pages.md)."""

    threshold: float = 0.7  # P(odd line) + P(even line) at or above: a line pixel
    close_width: float = 0.02  # horizontal closing, as a fraction of the map's width
    class_smoothing: float = 0.05  # class averaged along rows over this fraction of the width
    min_area: float = 2e-4  # a line's pixels at least, as a fraction of the map's area
    fragment_area: float = 0.25  # a fragment has at most this fraction of its line's pixels
    sliver: float = 0.6  # a line this much thinner than the median line is no line (a sliver)
    max_gap: float = 0.1  # pieces of one line at most this far apart (fraction of map width)
    padding: float = 0.2  # added above, below and at both ends, as a fraction of line height
    columns: int = 48  # polygon points along each edge (at most)


@dataclass(frozen=True)
class LineRegion:
    """One detected line in page pixels: `polygon` [(x, y), ...] (pixel centres, clockwise from
    the top left), its bounding `box` (left, top, right, bottom; right and bottom inclusive),
    and `score`, the mean line probability of its pixels."""

    polygon: list[tuple[int, int]]
    box: tuple[int, int, int, int]
    score: float


class _Piece:
    """Pixels of one line (or of what joined it) in map coordinates. Which pieces join it is
    judged by the rows of the piece it started from (`top`, `bottom`), never by rows that joined
    later, so a line cannot grow, fragment by fragment, over its neighbours; its columns
    (`left`, `right`) do grow with what joins it."""

    def __init__(self, line_class: int, rows: np.ndarray, cols: np.ndarray):
        self.line_class, self.rows, self.cols = line_class, rows, cols
        self.area = len(rows)
        self.top, self.bottom = int(rows.min()), int(rows.max())
        self.left, self.right = int(cols.min()), int(cols.max())

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    @property
    def thickness(self) -> float:
        """Pixels per column: the line's height across its slant."""
        return self.area / len(np.unique(self.cols))

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    def absorb(self, other: "_Piece") -> None:
        self.rows = np.concatenate([self.rows, other.rows])
        self.cols = np.concatenate([self.cols, other.cols])
        self.area += other.area
        self.left, self.right = min(self.left, other.left), max(self.right, other.right)


def check_probabilities(probabilities) -> np.ndarray:
    """The detector's output for one page as float32 [S, S', 3]; ValueError naming the shape
    (or the values) otherwise."""
    array = np.asarray(probabilities, dtype=np.float32)
    if array.ndim != 3 or array.shape[-1] != len(PAGE_CLASSES) or min(array.shape[:2]) < 2:
        raise ValueError(
            f"line probabilities must be [height, width, {len(PAGE_CLASSES)}] "
            f"({', '.join(PAGE_CLASSES)}), got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("line probabilities contain NaN or infinite values")
    return array


def find_lines(
    probabilities, page_size: tuple[int, int], options: RegionOptions = RegionOptions()
) -> list[LineRegion]:
    """The lines of a page of `page_size` (width, height) from the detector's probabilities for
    it ([S, S', 3]), top to bottom; [] for a page without lines."""
    array = check_probabilities(probabilities)
    width, height = page_size
    if width < 1 or height < 1:
        raise ValueError(f"page size must be positive, got {width}x{height}")
    lines = _group(_pieces(array, options), array.shape[:2], options)
    line_probability = array[..., ODD_LINE] + array[..., EVEN_LINE]
    scale = (width / array.shape[1], height / array.shape[0])
    regions = [_region(line, line_probability, scale, page_size, options) for line in lines]
    return sorted(regions, key=lambda region: ((region.box[1] + region.box[3]) / 2, region.box[0]))


def _pieces(array: np.ndarray, options: RegionOptions) -> list[_Piece]:
    """Connected components of each line class, after the horizontal closing."""
    is_line = array[..., ODD_LINE] + array[..., EVEN_LINE] >= max(options.threshold, 1e-6)
    # A line has one class along its length: the class is read from the probabilities averaged
    # along each row, so a detector unsure between the two within a line does not cut it up.
    along = max(1, round(options.class_smoothing * array.shape[1]))
    odd, even = (
        ndimage.uniform_filter1d(array[..., c], along, axis=1) for c in (ODD_LINE, EVEN_LINE)
    )
    classes = np.where(odd >= even, ODD_LINE, EVEN_LINE)
    close = max(1, round(options.close_width * array.shape[1]))
    pieces = []
    for line_class in (ODD_LINE, EVEN_LINE):
        mask = is_line & (classes == line_class)
        if close > 1:  # closing joins words; the padding keeps it from growing off the edges
            mask = ndimage.binary_closing(
                np.pad(mask, ((0, 0), (close, close))), np.ones((1, close), bool)
            )[:, close:-close]
        labels, _ = ndimage.label(mask)
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            rows, cols = np.nonzero(labels[box] == index)
            pieces.append(_Piece(line_class, rows + box[0].start, cols + box[1].start))
    return pieces


def _group(pieces: list[_Piece], shape: tuple, options: RegionOptions) -> list[_Piece]:
    """Lines from the pieces, largest first (see the module docstring, step 3); then lines that
    join another line once it has grown (a piece between them joined it) are merged into it."""
    min_area = options.min_area * shape[0] * shape[1]
    max_gap = options.max_gap * shape[1]
    lines: list[_Piece] = []
    for piece in sorted(pieces, key=lambda p: -p.area):
        host = _host(piece, lines, max_gap, options)
        if host is not None:
            host.absorb(piece)
        elif piece.area >= min_area:
            lines.append(piece)
    merged = True
    while merged:
        merged = False
        for line in sorted(lines, key=lambda line: line.area):
            host = _host(line, [other for other in lines if other is not line], max_gap, options)
            if host is not None and host.area >= line.area:
                host.absorb(line)
                lines.remove(line)
                merged = True
                break
    return _without_slivers(lines, options)


def _without_slivers(lines: list[_Piece], options: RegionOptions) -> list[_Piece]:
    """Lines thinner than `sliver` of the median line thickness are no lines (the detector's
    uncertain band between two lines): each joins the nearest line it overlaps horizontally
    within half a median thickness, or is dropped."""
    if not lines:
        return lines
    median = float(np.median([line.thickness for line in lines]))
    kept = [line for line in lines if line.thickness >= options.sliver * median]
    for sliver in (line for line in lines if line.thickness < options.sliver * median):
        near = [
            line
            for line in kept
            if min(line.right, sliver.right) >= max(line.left, sliver.left)
            and max(sliver.top - line.bottom, line.top - sliver.bottom) <= median / 2
        ]
        centre = (sliver.top + sliver.bottom) / 2
        if near:
            min(near, key=lambda line: abs((line.top + line.bottom) / 2 - centre)).absorb(sliver)
    return kept


def _host(piece: _Piece, lines: list[_Piece], max_gap: float, options: RegionOptions):
    """The line `piece` joins (the nearest by height when several would take it), or None."""
    hosts = [line for line in lines if _joins(piece, line, max_gap, options)]
    centre = (piece.top + piece.bottom) / 2
    return min(hosts, key=lambda line: abs((line.top + line.bottom) / 2 - centre), default=None)


def _joins(piece: _Piece, line: _Piece, max_gap: float, options: RegionOptions) -> bool:
    """Whether `piece` belongs to `line`: beside it, or a fragment above or below it. Heights
    are the line's where the piece is (a slanted line's box would hold its neighbours)."""
    gap = max(piece.left - line.right, line.left - piece.right) - 1  # < 0: columns overlap
    reach = max(gap, 0) + 2 * piece.height
    near = line.rows[(line.cols >= piece.left - reach) & (line.cols <= piece.right + reach)]
    if not len(near):
        return False
    top, bottom = int(near.min()), int(near.max())
    height = bottom - top + 1
    rows_shared = min(piece.bottom, bottom) - max(piece.top, top) + 1
    # At the line's height where it is: part of the line whatever its class (the detector
    # wavered between the classes along the line), while a touching neighbour lies above or below.
    inside = top <= (piece.top + piece.bottom) / 2 <= bottom and rows_shared >= 0.7 * piece.height
    beside = gap <= max_gap and (
        inside
        or (
            piece.line_class == line.line_class
            and -gap <= 0.5 * min(piece.width, line.width)  # side by side, not one above the other
            and rows_shared >= 0.5 * min(piece.height, height)
        )
    )
    vertical_gap = max(piece.top - bottom, top - piece.bottom) - 1
    fragment = (
        piece.area <= options.fragment_area * line.area
        and piece.height < 0.7 * height
        and gap < 0
        and vertical_gap <= height / 2
        and piece.width < ELONGATED * piece.height  # long: a line of its own, not a mark
    )
    return beside or fragment


def _region(
    line: _Piece,
    line_probability: np.ndarray,
    scale: tuple[float, float],
    page_size: tuple[int, int],
    options: RegionOptions,
) -> LineRegion:
    """The line's padded edge polygon in page pixels."""
    left, right = line.left, line.right + 1  # pixel edges in map coordinates
    edges = np.linspace(left, right, min(options.columns, right - left) + 1)
    which = np.clip(np.searchsorted(edges, line.cols, side="right") - 1, 0, len(edges) - 2)
    tops = np.full(len(edges) - 1, np.inf)
    bottoms = np.full(len(edges) - 1, -np.inf)
    np.minimum.at(tops, which, line.rows)
    np.maximum.at(bottoms, which, line.rows + 1)
    filled = np.isfinite(tops)  # columns without pixels (a gap the line jumps): interpolated
    centres = (edges[:-1] + edges[1:]) / 2
    tops = np.interp(centres, centres[filled], tops[filled])
    bottoms = np.interp(centres, centres[filled], bottoms[filled])
    pad = options.padding * float(np.median(bottoms - tops))
    xs = np.concatenate([[left - pad], centres, [right + pad]])
    upper = np.concatenate([tops[:1], tops, tops[-1:]]) - pad
    lower = np.concatenate([bottoms[:1], bottoms, bottoms[-1:]]) + pad
    width, height = page_size
    points = list(zip(xs, upper)) + list(zip(xs[::-1], lower[::-1]))
    polygon = _deduplicated(
        (
            int(np.clip(round(x * scale[0] - 0.5), 0, width - 1)),
            int(np.clip(round(y * scale[1] - 0.5), 0, height - 1)),
        )
        for x, y in points
    )
    xs_page, ys_page = zip(*polygon)
    return LineRegion(
        polygon,
        (min(xs_page), min(ys_page), max(xs_page), max(ys_page)),
        float(line_probability[line.rows, line.cols].mean()),
    )


def _deduplicated(points) -> list[tuple[int, int]]:
    """The points without consecutive repeats (rounding collapses close ones)."""
    result: list[tuple[int, int]] = []
    for point in points:
        if not result or result[-1] != point:
            result.append(point)
    if len(result) > 1 and result[0] == result[-1]:
        result.pop()
    return result
