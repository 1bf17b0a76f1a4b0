"""Line records from ALTO (v2, v3, v4), as exported by eScriptorium, Kraken and OCR tools.

Per page: the image named by Description/sourceImageInformation/fileName; TextLines in document
order (ALTO's reading order). A line is its Shape/Polygon/@POINTS polygon when present, else
its HPOS/VPOS/WIDTH/HEIGHT rectangle; its text is its String/@CONTENT values in order with
each SP as a space (HYP adds its CONTENT).

Coordinates are in Description/MeasurementUnit (pixel, mm10 = 1/10 mm, inch1200 = 1/1200 inch).
They are scaled to image pixels by image size / Page WIDTH, HEIGHT when the Page has them (this
also covers pixel coordinates of a rescaled image); otherwise pixel coordinates are used as they
are and mm10/inch1200 are converted with the image file's DPI (an error if it has none).
"""

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from data.errors import DatasetError
from data.line_crops import LineRecord, SkippedLine
from data.xml_pages import PageLine, XmlFormat, polygon_line, read_xml_pages

NAMESPACE_PREFIX = "http://www.loc.gov/standards/alto/"
UNITS_PER_INCH = {"mm10": 254.0, "inch1200": 1200.0}


def read_alto(source) -> Iterator[LineRecord | SkippedLine]:
    """Every TextLine of every ALTO file under `source`, pages sorted by path."""
    return read_xml_pages(source, ALTO)


def line_text(line: ET.Element) -> str:
    parts = {
        "String": lambda e: e.get("CONTENT", ""),
        "SP": lambda e: " ",
        "HYP": lambda e: e.get("CONTENT", ""),
    }
    return "".join(parts[child.tag](child) for child in line if child.tag in parts)


def scale(root: ET.Element, page_image: np.ndarray, image_path: Path) -> tuple[float, float]:
    """(x, y) factors from the file's coordinates to image pixels, per the module's rule."""
    unit = (root.findtext("Description/MeasurementUnit") or "pixel").strip()
    page = root.find("Layout/Page")
    height, width = page_image.shape
    try:
        page_width, page_height = float(page.get("WIDTH")), float(page.get("HEIGHT"))  # type: ignore[arg-type,union-attr]  # caught below
    except (AttributeError, TypeError, ValueError):
        page_width = page_height = 0.0
    if page_width > 0 and page_height > 0:
        return width / page_width, height / page_height
    if unit == "pixel":
        return 1.0, 1.0
    if unit not in UNITS_PER_INCH:
        raise DatasetError(f"{image_path}: unknown ALTO MeasurementUnit {unit!r}")
    with Image.open(image_path) as image:
        dpi = image.info.get("dpi")
    if not dpi:
        raise DatasetError(
            f"{image_path}: ALTO coordinates in {unit} need Page WIDTH/HEIGHT or an image DPI"
        )
    return float(dpi[0]) / UNITS_PER_INCH[unit], float(dpi[1]) / UNITS_PER_INCH[unit]


def _lines(root: ET.Element, page_image: np.ndarray, image_path: Path) -> Iterator[PageLine]:
    factors = scale(root, page_image, image_path)
    for line in root.iter("TextLine"):
        line_id, text = line.get("ID", ""), line_text(line)
        polygon = line.find("Shape/Polygon")
        if polygon is not None:
            yield polygon_line(line_id, text, polygon.get("POINTS"), factors)
            continue
        try:
            x, y, w, h = (float(line.get(name, "")) for name in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
        except (TypeError, ValueError):
            yield PageLine(line_id, text, [], "no polygon and no HPOS/VPOS/WIDTH/HEIGHT")
            continue
        left, top = x * factors[0], y * factors[1]
        right, bottom = (x + w) * factors[0] - 1, (y + h) * factors[1] - 1  # last pixel inside
        yield PageLine(line_id, text, [(left, top), (right, top), (right, bottom), (left, bottom)])


def _image_name(root: ET.Element) -> str | None:
    return root.findtext("Description/sourceImageInformation/fileName")


ALTO = XmlFormat("alto", "alto", NAMESPACE_PREFIX, _image_name, _lines)
