"""PAGE-XML reader and polygon crops, on generated pages in both schema versions."""

import numpy as np
import pytest
from line_fixtures import INK, PAGE_2013, PAGE_2019, PAPER, page_image, write_pagexml

from data.errors import DatasetError
from data.line_crops import LineRecord, SkippedLine, crop_polygon, page_background
from data.pagexml import read_pagexml

NAME = "JDH page (1)"  # spaces and parentheses, like the real exports


@pytest.mark.parametrize("namespace", [PAGE_2013, PAGE_2019])
def test_reading_order_text_and_crops(tmp_path, namespace):
    page_image(tmp_path / f"{NAME}.jpg", bars=[(10, 10, 60, 30), (10, 60, 90, 80)])
    write_pagexml(
        tmp_path / f"{NAME}.xml",
        f"{NAME}.jpg",
        namespace=namespace,
        order=["r2", "r1"],
        regions=[
            ("r1", [("l1", "10,10 59,10 59,29 10,29", ["second", "alternative"])]),
            (
                "r2",
                [("l2", "10,60 89,60 89,79 10,79", "first"), ("l3", "100,5 110,5 110,15", "third")],
            ),
        ],
    )
    records = list(read_pagexml(tmp_path))
    assert [(r.line_id, r.text) for r in records] == [
        ("l2", "first"),
        ("l3", "third"),
        ("l1", "second"),
    ]
    assert records[0].image.shape == (20, 80) and records[2].image.shape == (20, 50)
    assert (
        records[0].image.dtype == np.uint8 and abs(int(records[0].image.mean()) - INK) < 10
    )  # ink, JPEG noise
    assert {(r.source, r.page, r.document, r.writer) for r in records} == {
        ("pagexml", NAME, tmp_path.name, "")
    }


def test_document_order_without_reading_order_and_missing_text(tmp_path):
    page_image(tmp_path / "p.png")
    write_pagexml(
        tmp_path / "p.xml",
        "p.png",
        regions=[("r1", [("a", "0,0 9,0 9,9", None)]), ("r2", [("b", "0,0 9,0 9,9", "x")])],
    )
    assert [(r.line_id, r.text) for r in read_pagexml(tmp_path)] == [("a", ""), ("b", "x")]


def test_polygon_crop_sets_outside_to_background():
    page = np.full((50, 50), 100, dtype=np.uint8)
    crop = crop_polygon(page, [(10, 10), (29, 10), (10, 29)], background=255)  # right triangle
    assert crop.shape == (20, 20)
    assert crop[0, 0] == 100 and crop[19, 0] == 100 and crop[0, 19] == 100  # corners on the polygon
    assert crop[19, 19] == 255 and crop[15, 15] == 255  # beyond the hypotenuse: background
    assert (crop == 100).sum() > 190 and (crop == 255).sum() > 150


def test_page_background_is_the_paper():
    page = np.full((100, 100), PAPER, dtype=np.uint8)
    page[:30] = INK  # a lot of ink
    page[0, 0] = 255  # a white speck
    assert page_background(page) == PAPER


def test_polygons_partly_outside_are_clipped_entirely_outside_are_skipped(tmp_path):
    page_image(tmp_path / "p.png", size=(200, 120))
    write_pagexml(
        tmp_path / "p.xml",
        "p.png",
        regions=[
            (
                "r",
                [
                    ("partly", "150,100 260,100 260,140 150,140", "a"),
                    ("outside", "300,10 400,10 400,50", "b"),
                ],
            )
        ],
    )
    partly, outside = read_pagexml(tmp_path)
    assert isinstance(partly, LineRecord) and partly.image.shape == (20, 50)
    assert outside == SkippedLine(str(tmp_path / "p.xml"), "outside", "polygon outside the page")


def test_malformed_points_are_a_counted_skip(tmp_path):
    page_image(tmp_path / "p.png")
    write_pagexml(tmp_path / "p.xml", "p.png", regions=[("r", [("bad", "1,2 3", "a")])])
    (skip,) = read_pagexml(tmp_path)
    assert skip.line_id == "bad" and "not a polygon" in skip.reason


def test_other_xml_files_are_skipped_and_named(tmp_path):
    (tmp_path / "mets.xml").write_text("<mets/>")
    (skip,) = read_pagexml(tmp_path)
    assert skip.file == str(tmp_path / "mets.xml") and "not a pagexml file" in skip.reason


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "no page XML files"),
        ("malformed", "malformed XML: mismatched tag: line 1"),
        ("missing image", "image 'gone (2).jpg' not found"),
    ],
)
def test_bad_folders_raise_clear_errors(tmp_path, case, message):
    if case == "malformed":
        (tmp_path / "broken page.xml").write_text("<PcGts><Page></PcGts>")
        message = f"{tmp_path / 'broken page.xml'}: {message}"
    elif case == "missing image":
        write_pagexml(tmp_path / "p.xml", "gone (2).jpg", regions=[])
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(read_pagexml(tmp_path))


def test_image_one_folder_up_as_transkribus_exports(tmp_path):
    page_image(tmp_path / "p.png", bars=[(0, 0, 10, 10)])
    (tmp_path / "page").mkdir()
    write_pagexml(
        tmp_path / "page" / "p.xml", "p.png", regions=[("r", [("l", "0,0 9,0 9,9 0,9", "t")])]
    )
    (record,) = read_pagexml(tmp_path)
    assert record.page == "page/p" and record.document == "page" and (record.image == INK).all()
