"""Line records from PAGE-XML (2013-07-15, 2019-07-15 and other PRImA versions), as exported by
Transkribus, eScriptorium and Kraken.

Per page: the image named by Page/@imageFilename; regions in reading order
(ReadingOrder's groups, RegionRefIndexed sorted by index, nested groups in place; regions it
does not name follow in document order, and without a ReadingOrder document order is used);
within a region its TextLines in document order. A line is its Coords/@points polygon cropped
from the page (outside the polygon = paper, see data.line_crops) and the Unicode of its own
first TextEquiv (the lowest @index when several are given), not its Words' or its region's.
"""

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data.line_crops import LineRecord, SkippedLine
from data.xml_pages import PageLine, XmlFormat, polygon_line, read_xml_pages

NAMESPACE_PREFIX = "http://schema.primaresearch.org/PAGE/gts/pagecontent/"


def read_pagexml(source) -> Iterator[LineRecord | SkippedLine]:
    """Every TextLine of every PAGE-XML file under `source`, pages sorted by path."""
    return read_xml_pages(source, PAGE_XML)


def region_order(page: ET.Element | None) -> list[ET.Element]:
    """TextRegions (nested ones included) in reading order (none without a Page)."""
    if page is None:
        return []
    regions = list(page.iter("TextRegion"))
    order = {region_id: i for i, region_id in enumerate(_ordered_refs(page.find("ReadingOrder")))}
    return sorted(regions, key=lambda region: order.get(region.get("id", ""), len(order)))


def line_text(line: ET.Element) -> str:
    equivs = line.findall("TextEquiv")
    if not equivs:
        return ""
    return min(equivs, key=_index).findtext("Unicode") or ""  # min keeps the first of equals


def _ordered_refs(group: ET.Element | None) -> list[str]:
    if group is None:
        return []
    refs: list[str] = []
    for child in sorted(group, key=_index):  # stable: unindexed (RegionRef) keep document order
        ref = child.get("regionRef")
        if ref:
            refs.append(ref)
        refs += _ordered_refs(child)
    return refs


def _index(element: ET.Element) -> int:
    """@index, or 0 when absent or not an integer (then document order decides)."""
    try:
        return int(element.get("index", "0"))
    except ValueError:
        return 0


def _lines(root: ET.Element, page_image: np.ndarray, image_path: Path) -> Iterator[PageLine]:
    for region in region_order(root.find("Page")):
        for line in region.findall("TextLine"):
            coords = line.find("Coords")
            yield polygon_line(
                line.get("id", ""),
                line_text(line),
                None if coords is None else coords.get("points"),
            )


def _image_name(root: ET.Element) -> str | None:
    page = root.find("Page")
    return None if page is None else page.get("imageFilename")


PAGE_XML = XmlFormat("pagexml", "PcGts", NAMESPACE_PREFIX, _image_name, _lines)
