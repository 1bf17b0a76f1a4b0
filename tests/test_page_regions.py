"""serving.page_regions: line regions from constructed detector probability maps."""

import numpy as np
import pytest

from common.pages import BACKGROUND, EVEN_LINE, ODD_LINE
from serving.page_regions import RegionOptions, find_lines

S = 100
PAGE = (1000, 2000)  # width, height: the map is stretched 10x across, 20x down


def probability_map(*bands, size=S) -> np.ndarray:
    """[size, size, 3]: background everywhere except the bands (top, bottom, left, right, class),
    bottom and right exclusive, with the detector's typical confidence of 0.9."""
    probabilities = np.full((size, size, 3), 0.05, np.float32)
    probabilities[..., BACKGROUND] = 0.9
    for top, bottom, left, right, line_class in bands:
        probabilities[top:bottom, left:right] = 0.05
        probabilities[top:bottom, left:right, line_class] = 0.9
    return probabilities


def box_in_map(region) -> tuple:
    """The region's box back in map pixels (rounded), to compare with the bands."""
    left, top, right, bottom = region.box
    return round(left / 10), round(top / 20), round((right + 1) / 10), round((bottom + 1) / 20)


def test_touching_lines_of_alternating_classes_stay_apart_top_to_bottom():
    bands = [(10, 20, 5, 95, ODD_LINE), (20, 30, 5, 90, EVEN_LINE), (30, 40, 5, 60, ODD_LINE)]
    regions = find_lines(probability_map(*reversed(bands)), PAGE)
    assert len(regions) == 3
    centres = [(r.box[1] + r.box[3]) / 2 / 20 for r in regions]
    assert centres == sorted(centres)
    for region, (top, bottom, _, right, _) in zip(regions, bands):
        assert abs((region.box[1] + region.box[3]) / 2 / 20 - (top + bottom) / 2) < 1
        assert abs(region.box[2] / 10 - right) <= 2  # padding of 0.2 line heights
        assert 0.85 < region.score <= 1.0
    # the same touching rows in one class are one blob: the alternation is what separates them
    merged = [(top, bottom, left, right, ODD_LINE) for top, bottom, left, right, _ in bands]
    assert len(find_lines(probability_map(*merged), PAGE)) == 1


def test_empty_page_has_no_lines():
    assert find_lines(probability_map(), PAGE) == []
    # below the threshold everywhere: still nothing
    faint = probability_map((10, 20, 5, 95, ODD_LINE))
    faint[10:20, 5:95] = (0.6, 0.3, 0.1)
    assert find_lines(faint, PAGE) == []


def test_one_huge_region_is_one_line_clipped_to_the_page():
    (region,) = find_lines(probability_map((0, S, 0, S, EVEN_LINE)), PAGE)
    assert region.box == (0, 0, PAGE[0] - 1, PAGE[1] - 1)
    assert all(0 <= x < PAGE[0] and 0 <= y < PAGE[1] for x, y in region.polygon)


def test_fragments_join_their_line_and_specks_are_dropped():
    probabilities = probability_map(
        (40, 48, 10, 90, ODD_LINE),  # the line
        (36, 38, 30, 32, EVEN_LINE),  # an i-dot just above it, classed as the other line
        (48, 51, 50, 53, ODD_LINE),  # a descender below it
        (80, 81, 70, 71, EVEN_LINE),  # one noisy pixel far away
    )
    (region,) = find_lines(probabilities, PAGE)
    left, top, right, bottom = box_in_map(region)
    assert top <= 36 and bottom >= 51 - 1
    assert left <= 10 and right >= 90


def test_word_gaps_and_wide_gaps_within_a_line_are_one_line_but_columns_are_two():
    words = [(20, 28, start, start + 12, ODD_LINE) for start in range(5, 90, 14)]  # gaps of 2 px
    assert len(find_lines(probability_map(*words), PAGE)) == 1
    broken = probability_map((20, 28, 5, 40, ODD_LINE), (20, 28, 46, 95, ODD_LINE))
    assert len(find_lines(broken, PAGE)) == 1
    columns = probability_map((20, 28, 2, 30, ODD_LINE), (20, 28, 70, 98, ODD_LINE))
    left_column, right_column = find_lines(columns, PAGE)
    assert left_column.box[2] < right_column.box[0]


def test_polygon_follows_a_slanted_line():
    probabilities = probability_map()
    for column in range(5, 95):  # a band sloping down by 20 rows across the page
        top = 30 + (column - 5) * 20 // 90
        probabilities[top : top + 6, column] = (0.05, 0.9, 0.05)
    (region,) = find_lines(probabilities, PAGE)
    upper = [y for x, y in region.polygon[: len(region.polygon) // 2]]
    assert upper[-1] - upper[0] > 15 * 20  # the upper edge descends with the line
    height = region.box[3] - region.box[1]
    assert height > 20 * 20  # the box spans the whole slope, the polygon does not
    assert max(y for _, y in region.polygon[len(region.polygon) // 2 :]) <= region.box[3]


def test_min_area_is_an_option():
    small = probability_map((50, 52, 50, 56, ODD_LINE))  # 12 pixels
    assert len(find_lines(small, PAGE)) == 1  # default min area: 2 pixels of 100x100
    assert find_lines(small, PAGE, RegionOptions(min_area=0.01)) == []


@pytest.mark.parametrize(
    "shape", [(S, S), (S, S, 2), (1, S, 3), (2, S, S, 3)], ids=["2d", "2-classes", "1-row", "4d"]
)
def test_wrong_shapes_are_refused_naming_the_shape(shape):
    with pytest.raises(ValueError, match=r"line probabilities must be .*got shape"):
        find_lines(np.zeros(shape, np.float32), PAGE)


def test_nan_and_bad_page_size_are_refused():
    probabilities = probability_map()
    probabilities[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        find_lines(probabilities, PAGE)
    with pytest.raises(ValueError, match="page size"):
        find_lines(probability_map(), (0, 10))


def test_a_short_line_under_a_long_one_is_not_taken_for_a_fragment():
    probabilities = probability_map(
        (20, 28, 5, 95, ODD_LINE),  # a long line
        (30, 35, 60, 90, EVEN_LINE),  # a short line just under it (an address, a date)
        (29, 31, 20, 22, EVEN_LINE),  # a descender of the long line, misclassed
    )
    long_line, short_line = find_lines(probabilities, PAGE)
    assert box_in_map(long_line)[3] >= 31  # the descender joined the long line
    assert box_in_map(short_line)[0] >= 58 and box_in_map(short_line)[1] >= 29


def test_a_slanted_line_does_not_swallow_a_line_of_its_class_inside_its_box():
    probabilities = probability_map((23, 26, 55, 95, ODD_LINE))  # a thin line, top right
    for column in range(5, 95):  # a band descending from row 20 to row 40
        top = 20 + (column - 5) * 20 // 90
        probabilities[top : top + 6, column] = (0.05, 0.9, 0.05)
    probabilities[23:26, 55:95] = (0.05, 0.9, 0.05)  # the thin line, again (the band passed)
    probabilities[26 : 26 + 1, 55:95] = (0.9, 0.05, 0.05)  # a gap row between them
    regions = find_lines(probabilities, PAGE)
    assert len(regions) == 2


def test_padding_grows_each_line_by_a_fraction_of_its_height():
    probabilities = probability_map((40, 50, 20, 80, ODD_LINE))
    (plain,) = find_lines(probabilities, PAGE, RegionOptions(padding=0))
    (padded,) = find_lines(probabilities, PAGE, RegionOptions(padding=0.5))
    assert box_in_map(plain) == (20, 40, 80, 50)
    assert box_in_map(padded) == (15, 35, 85, 55)  # half of the 10-row height on every side


def test_a_line_whose_class_wavers_is_one_line():
    probabilities = probability_map(
        (20, 28, 5, 35, ODD_LINE),
        (20, 28, 35, 60, EVEN_LINE),  # the detector switched class mid-line
        (21, 27, 60, 95, ODD_LINE),
        (30, 38, 5, 95, EVEN_LINE),  # the next line
    )
    probabilities[22:26, 40:42] = (0.05, 0.9, 0.05)  # and a speck of the first class inside
    upper, lower = find_lines(probabilities, PAGE, RegionOptions(padding=0))
    assert box_in_map(upper)[1:4:2] == (20, 28) and box_in_map(lower)[1:4:2] == (30, 38)
    assert box_in_map(upper)[0] == 5 and box_in_map(upper)[2] == 95


def test_slivers_between_lines_are_no_lines():
    probabilities = probability_map(
        (20, 30, 5, 95, ODD_LINE),
        (31, 32, 10, 90, ODD_LINE),  # a one-row band under it: joins it
        (34, 44, 5, 95, EVEN_LINE),
        (60, 70, 5, 95, ODD_LINE),
        (80, 81, 10, 90, EVEN_LINE),  # a one-row band far from any line: dropped
    )
    regions = find_lines(probabilities, PAGE, RegionOptions(padding=0))
    assert [box_in_map(r)[1:4:2] for r in regions] == [(20, 32), (34, 44), (60, 70)]
