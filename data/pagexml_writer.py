"""PAGE-XML 2019-07-15 for recognized pages, as Transkribus and eScriptorium import them.

`write_page(path, image_name, width, height, lines)` writes one page: Metadata (Creator,
Created, LastChange), Page with the image's name and size, a ReadingOrder naming the one
TextRegion, and that region holding a TextLine per `WrittenLine` in the order given (reading
order), each with its Coords, an optional Baseline and a TextEquiv (conf when known, Unicode).
The region's own Coords are the bounding box of its lines, and its TextEquiv the page's text
(lines joined by newlines), as Transkribus writes them. Elements follow the schema's sequence
order, and points are non-negative integers, as the schema's pattern requires. An empty page
(no lines) has no region and no reading order.

`data.pagexml` reads these files back. Light module: lxml only.
"""

import datetime
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

NAMESPACE = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
SCHEMA_LOCATION = f"{NAMESPACE} {NAMESPACE}/pagecontent.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CREATOR = "text-recognizer"


@dataclass(frozen=True)
class WrittenLine:
    points: list[tuple[int, int]]  # the line's polygon in page pixels
    text: str
    confidence: float | None = None  # in [0, 1]; None: no conf attribute
    baseline: list[tuple[int, int]] | None = None  # left to right; None: no Baseline


def write_page(
    path: str | Path, image_name: str, width: int, height: int, lines: list[WrittenLine]
) -> Path:
    """Writes the page's PAGE-XML to `path` (UTF-8) and returns the path; ValueError naming the
    line for a polygon with fewer than 2 points or a confidence outside [0, 1]."""
    if width < 1 or height < 1:
        raise ValueError(f"page size must be positive, got {width}x{height}")
    root = etree.Element(f"{{{NAMESPACE}}}PcGts", nsmap={None: NAMESPACE, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", SCHEMA_LOCATION)
    _metadata(root)
    page = _child(
        root,
        "Page",
        imageFilename=image_name,
        imageWidth=str(int(width)),
        imageHeight=str(int(height)),
    )
    if lines:
        order = _child(_child(page, "ReadingOrder"), "OrderedGroup", id="ro_1", caption="Regions")
        _child(order, "RegionRefIndexed", index="0", regionRef="r_1")
        region = _child(page, "TextRegion", id="r_1", type="paragraph")
        everything = [point for line in lines for point in line.points]
        left, top = (min(p[i] for p in everything) for i in (0, 1))
        right, bottom = (max(p[i] for p in everything) for i in (0, 1))
        _child(
            region,
            "Coords",
            points=_points([(left, top), (right, top), (right, bottom), (left, bottom)]),
        )
        for number, line in enumerate(lines, start=1):
            _line(region, f"r_1_l{number}", line)
        _text_equiv(region, "\n".join(line.text for line in lines), None)
    path = Path(path)
    etree.ElementTree(root).write(
        str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True
    )
    return path


def _metadata(root: etree._Element) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    metadata = _child(root, "Metadata")
    _child(metadata, "Creator").text = CREATOR
    _child(metadata, "Created").text = now
    _child(metadata, "LastChange").text = now


def _line(region: etree._Element, line_id: str, line: WrittenLine) -> None:
    if len(line.points) < 2:
        raise ValueError(f"line {line_id}: a polygon needs at least 2 points, got {line.points}")
    if line.confidence is not None and not 0.0 <= line.confidence <= 1.0:
        raise ValueError(f"line {line_id}: confidence {line.confidence} is not in [0, 1]")
    element = _child(region, "TextLine", id=line_id)
    _child(element, "Coords", points=_points(line.points))
    if line.baseline:
        _child(element, "Baseline", points=_points(line.baseline))
    _text_equiv(element, line.text, line.confidence)


def _text_equiv(parent: etree._Element, text: str, confidence: float | None) -> None:
    attributes = {} if confidence is None else {"conf": f"{confidence:.4f}"}
    _child(_child(parent, "TextEquiv", **attributes), "Unicode").text = text


def _points(points) -> str:
    return " ".join(f"{max(0, round(x))},{max(0, round(y))}" for x, y in points)


def _child(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NAMESPACE}}}{tag}", attributes)
