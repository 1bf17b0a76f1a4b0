"""Target masks of the line detector (data.page_masks): reading-order alternation, the stretch
to S x S, overlaps, empty pages and bad polygons."""

import numpy as np
import pytest

from common.pages import BACKGROUND, EVEN_LINE, ODD_LINE
from data.page_masks import box_points, line_class, page_mask

PAGE = (200, 100)  # width, height: stretched to 100 x 100, so x halves and y stays


def test_lines_alternate_odd_even_in_reading_order():
    boxes = [box_points(20, 10 + 30 * i, 160, 20) for i in range(3)]
    mask = page_mask(boxes, PAGE, 100)
    assert [mask[20 + 30 * i, 50] for i in range(3)] == [ODD_LINE, EVEN_LINE, ODD_LINE]
    assert [line_class(i) for i in range(3)] == [ODD_LINE, EVEN_LINE, ODD_LINE]
    assert mask[5, 50] == BACKGROUND and mask[35, 50] == BACKGROUND  # above and between lines


def test_reading_order_not_position_decides_the_class():
    """The first line read is odd even when it lies below the second."""
    bottom, top = box_points(20, 60, 160, 20), box_points(20, 10, 160, 20)
    mask = page_mask([bottom, top], PAGE, 100)
    assert mask[70, 50] == ODD_LINE and mask[20, 50] == EVEN_LINE


def test_the_page_is_stretched_to_the_square_without_padding():
    """A box on the right half of a wide page covers the right half of the mask's columns, and
    a polygon over the whole page covers the whole mask."""
    mask = page_mask([box_points(100, 0, 100, 100)], PAGE, 50)
    columns = np.flatnonzero(mask.any(axis=0))
    assert columns[0] == 25 and columns[-1] == 49
    assert mask[:, 25:].all() and not mask[:, :24].any()
    full = page_mask([[(0, 0), (199, 0), (199, 99), (0, 99)]], PAGE, 50)
    assert (full == ODD_LINE).all()


def test_overlapping_lines_are_separated_by_background():
    """Pixels inside two polygons are background, whatever their classes, so lines never merge."""
    first, second = box_points(20, 10, 160, 30), box_points(20, 30, 160, 30)  # rows 30..39 shared
    mask = page_mask([first, second], PAGE, 100)
    assert mask[20, 50] == ODD_LINE and mask[50, 50] == EVEN_LINE
    assert (mask[31:39, 20:80] == BACKGROUND).all()
    # lines 1 and 3 (both odd) overlapping across a thin second line still get a gap
    third = box_points(20, 35, 160, 20)
    mask = page_mask([first, box_points(20, 45, 160, 2), third], PAGE, 100)
    assert (mask[36:39, 20:80] == BACKGROUND).all()


def test_a_page_without_lines_is_all_background():
    mask = page_mask([], PAGE, 64)
    assert mask.shape == (64, 64) and mask.dtype == np.uint8 and (mask == BACKGROUND).all()


def test_a_line_thinner_than_a_mask_pixel_keeps_a_trace():
    mask = page_mask([box_points(100, 500, 800, 1)], (1000, 1000), 64)
    assert (mask == ODD_LINE).sum() >= 40


def test_polygons_off_the_page_are_clipped():
    mask = page_mask([[(-50, -50), (100, -50), (100, 49), (-50, 49)]], PAGE, 100)
    assert mask[0, 0] == ODD_LINE and mask[60, 10] == BACKGROUND and mask[10, 60] == BACKGROUND


def test_bad_polygons_and_sizes_are_refused_naming_the_line():
    with pytest.raises(ValueError, match="line 1: a polygon needs at least 3 points"):
        page_mask([box_points(0, 0, 10, 10), [(0, 0), (5, 5)]], PAGE, 32)
    with pytest.raises(ValueError, match="page size"):
        page_mask([], (0, 100), 32)
