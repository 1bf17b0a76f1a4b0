"""data.pagexml_writer: PAGE-XML 2019 that the project's reader (data.pagexml) reads back."""

import numpy as np
import pytest
from lxml import etree
from PIL import Image

from data.pagexml import read_pagexml
from data.pagexml_writer import NAMESPACE, WrittenLine, write_page

# The schema's sequence order of the children we write (pagecontent.xsd, 2019-07-15).
SEQUENCES = {
    "PcGts": ["Metadata", "Page"],
    "Metadata": ["Creator", "Created", "LastChange"],
    "Page": ["ReadingOrder", "TextRegion"],
    "TextRegion": ["Coords", "TextLine", "TextEquiv"],
    "TextLine": ["Coords", "Baseline", "TextEquiv"],
    "TextEquiv": ["Unicode"],
}

LINES = [
    WrittenLine([(10, 10), (190, 12), (190, 40), (10, 38)], "Dear Sir,", 0.91),
    WrittenLine([(10, 50), (150, 50), (150, 80), (10, 80)], "Kew — 5 May (1860)", None),
    WrittenLine([(10, 90), (120, 90), (120, 118)], "& yours", 0.5, [(10, 110), (120, 112)]),
]


def page_with_image(tmp_path, name="page 1 (copy).png"):
    page = np.full((130, 200), 230, np.uint8)
    page[20:30, 20:180] = 20  # ink inside the first line
    Image.fromarray(page).save(tmp_path / name)
    return name


def local(tag: str) -> str:
    return etree.QName(tag).localname


def test_written_page_reads_back_in_reading_order(tmp_path):
    name = page_with_image(tmp_path)
    path = write_page(tmp_path / "page 1 (copy).xml", name, 200, 130, LINES)
    records = list(read_pagexml(tmp_path))
    assert [r.text for r in records] == [line.text for line in LINES]
    assert [r.line_id for r in records] == ["r_1_l1", "r_1_l2", "r_1_l3"]
    first = records[0]
    assert first.image.shape == (31, 181)  # the polygon's bounding box, inclusive
    assert first.image.min() == 20  # the ink is inside it
    root = etree.parse(str(path)).getroot()
    assert etree.QName(root).namespace == NAMESPACE
    assert "pagecontent.xsd" in root.get(
        "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
    )


def test_structure_follows_the_schema(tmp_path):
    root = etree.parse(str(write_page(tmp_path / "p.xml", "p.png", 200, 130, LINES))).getroot()
    for element in root.iter():
        order = SEQUENCES.get(local(element.tag))
        if order is None:
            continue
        children = [local(child.tag) for child in element]
        assert set(children) <= set(order), (local(element.tag), children)
        assert children == sorted(children, key=order.index), (local(element.tag), children)
    ns = {"p": NAMESPACE}
    page = root.find("p:Page", ns)
    assert (page.get("imageWidth"), page.get("imageHeight")) == ("200", "130")
    ref = page.find("p:ReadingOrder/p:OrderedGroup/p:RegionRefIndexed", ns)
    assert ref.get("regionRef") == page.find("p:TextRegion", ns).get("id")
    lines = page.findall("p:TextRegion/p:TextLine", ns)
    assert [line.find("p:TextEquiv", ns).get("conf") for line in lines] == [
        "0.9100",
        None,
        "0.5000",
    ]
    assert lines[0].find("p:Coords", ns).get("points") == "10,10 190,12 190,40 10,38"
    assert lines[2].find("p:Baseline", ns).get("points") == "10,110 120,112"
    assert lines[0].find("p:Baseline", ns) is None
    region_text = page.find("p:TextRegion/p:TextEquiv/p:Unicode", ns).text
    assert region_text == "Dear Sir,\nKew — 5 May (1860)\n& yours"
    assert page.find("p:TextRegion/p:Coords", ns).get("points") == "10,10 190,10 190,118 10,118"


def test_empty_page_has_no_region_and_reads_back_empty(tmp_path):
    name = page_with_image(tmp_path, "blank.png")
    path = write_page(tmp_path / "blank.xml", name, 200, 130, [])
    assert list(read_pagexml(tmp_path)) == []
    root = etree.parse(str(path)).getroot()
    assert [local(child.tag) for child in root.find(f"{{{NAMESPACE}}}Page")] == []


def test_bad_lines_are_refused_naming_the_line(tmp_path):
    with pytest.raises(ValueError, match="r_1_l2: a polygon needs at least 2 points"):
        write_page(tmp_path / "x.xml", "x.png", 10, 10, [LINES[0], WrittenLine([(1, 1)], "a")])
    with pytest.raises(ValueError, match="r_1_l1: confidence 1.5"):
        write_page(tmp_path / "x.xml", "x.png", 10, 10, [WrittenLine([(0, 0), (1, 1)], "a", 1.5)])
    with pytest.raises(ValueError, match="page size"):
        write_page(tmp_path / "x.xml", "x.png", 0, 10, [])
