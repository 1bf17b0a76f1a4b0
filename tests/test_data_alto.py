"""ALTO reader: every namespace version and measurement unit, on generated pages."""

import pytest
from line_fixtures import INK, PAPER, page_image, write_alto

from data.alto import read_alto
from data.errors import DatasetError

BAR = (10, 10, 60, 30)  # the ink bar every test page has: 50 x 20 pixels at (10, 10)


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize(
    "unit, box, page_size, dpi",
    [
        ("pixel", (10, 10, 50, 20), None, None),
        ("pixel", (20, 20, 100, 40), (400, 240), None),  # coordinates of an image twice the size
        ("mm10", (20, 20, 100, 40), (400, 240), None),  # scaled by image size / Page size
        ("inch1200", (40, 40, 200, 80), None, (300, 300)),  # no Page size: the image's DPI
        ("mm10", (20, 20, 100, 40), None, (127, 127)),  # 127 dpi: half a pixel per 1/10 mm
    ],
)
def test_units_and_versions_crop_the_line(tmp_path, version, unit, box, page_size, dpi):
    page_image(tmp_path / "scan 1 (a).png", bars=[BAR], dpi=dpi)
    write_alto(
        tmp_path / "scan 1 (a).xml",
        "scan 1 (a).png",
        [("tl1", box, ["The", "line."], None)],
        version=version,
        unit=unit,
        page_size=page_size,
    )
    (record,) = read_alto(tmp_path)
    assert record.text == "The line." and record.line_id == "tl1" and record.source == "alto"
    assert record.image.shape == (20, 50) and (record.image == INK).all()


def test_polygon_is_used_when_present(tmp_path):
    page_image(tmp_path / "p.png", bars=[BAR])
    triangle = "10 10 59 10 10 29"  # ALTO 2/3 style: space-separated pairs
    write_alto(
        tmp_path / "p.xml",
        "C:\\scans\\p.png",
        [("tl1", (0, 0, 200, 120), ["a"], triangle)],
        version=2,
    )
    (record,) = read_alto(tmp_path)  # the Windows path from another machine resolves by its name
    assert record.image.shape == (20, 50)
    assert (
        record.image[0, 0] == INK and record.image[19, 49] == PAPER
    )  # outside the triangle: paper


def test_box_outside_the_page_is_a_counted_skip(tmp_path):
    page_image(tmp_path / "p.png")
    write_alto(tmp_path / "p.xml", "p.png", [("far", (500, 500, 10, 10), ["x"], None)])
    (skip,) = read_alto(tmp_path)
    assert (skip.file, skip.line_id, skip.reason) == (
        str(tmp_path / "p.xml"),
        "far",
        "polygon outside the page",
    )


def test_physical_units_without_page_size_or_dpi_are_an_error(tmp_path):
    page_image(tmp_path / "p.png")
    write_alto(tmp_path / "p.xml", "p.png", [("l", (1, 1, 5, 5), ["x"], None)], unit="mm10")
    with pytest.raises(DatasetError, match="mm10 need Page WIDTH/HEIGHT or an image DPI"):
        list(read_alto(tmp_path))


def test_missing_image_is_named(tmp_path):
    write_alto(tmp_path / "p.xml", "nowhere.tif", [])
    with pytest.raises(DatasetError, match="image 'nowhere.tif' not found"):
        list(read_alto(tmp_path))
