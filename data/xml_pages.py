"""The walk over a folder of page XML files (PAGE-XML, ALTO) shared by their readers.

Both formats are "one XML per page image, lines as polygons with text", so finding the files,
parsing them with clear errors, finding the image, and cropping each line polygon live here; a
format module only says which root element it reads, where the image name is, and how to get
(line id, text, polygon) out of a parsed page.
"""

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path, PureWindowsPath
from typing import NamedTuple

import numpy as np

from data.errors import DatasetError
from data.line_crops import LineRecord, SkippedLine, crop_polygon, load_gray, page_background

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class PageLine(NamedTuple):
    line_id: str
    text: str
    points: list  # [(x, y), ...] in page-image pixels
    problem: str = ""  # why the line cannot be cropped (e.g. malformed coordinates): skipped


class XmlFormat(NamedTuple):
    name: str  # the `source` of the records, e.g. "pagexml"
    root_tag: str  # e.g. "PcGts"
    namespace_prefix: str  # every version of the schema shares it
    image_name: Callable[[ET.Element], str | None]
    lines: Callable[[ET.Element, np.ndarray, Path], Iterator[PageLine]]  # (root, page, image path)


class XmlPage(NamedTuple):
    path: Path  # the XML file
    root: ET.Element  # parsed, namespaces stripped
    image: np.ndarray  # the page image, uint8 [H, W] as in the source
    image_path: Path
    page_id: str  # the XML's path under the source folder, without suffix: the split unit
    document: str  # its folder under the source (the source's name for top-level files)


def xml_pages(source, fmt: XmlFormat) -> Iterator[XmlPage | SkippedLine]:
    """Every `fmt` page under `source` (recursively, sorted by path), parsed, with its image.

    XML files of another kind (e.g. a Transkribus export's mets.xml) come as SkippedLine; a
    malformed file or a missing image raises DatasetError naming it. Shared by the line reader
    (read_xml_pages) and the page reader (data.pages), so both see the same pages and ids.
    """
    source = Path(source)
    for path in xml_files(source):
        root, namespace = parse_xml(path)
        if root.tag != fmt.root_tag or not namespace.startswith(fmt.namespace_prefix):
            yield SkippedLine(
                str(path), "", f"not a {fmt.name} file (root {root.tag!r}, namespace {namespace!r})"
            )
            continue
        name = fmt.image_name(root)
        if not name:
            raise DatasetError(f"{path}: no image file name")
        image_path = resolve_image(path, name)
        relative = path.relative_to(source).with_suffix("")
        document = (
            relative.parent.as_posix() if relative.parent != Path(".") else source.resolve().name
        )
        yield XmlPage(path, root, load_gray(image_path), image_path, relative.as_posix(), document)


def read_xml_pages(source, fmt: XmlFormat) -> Iterator[LineRecord | SkippedLine]:
    """Lines of every `fmt` page under `source` (xml_pages), cropped to their polygons; a line
    that cannot be cropped comes as SkippedLine with the reason."""
    for page in xml_pages(source, fmt):
        if isinstance(page, SkippedLine):
            yield page
            continue
        background = page_background(page.image)
        for line in fmt.lines(page.root, page.image, page.image_path):
            image = None if line.problem else crop_polygon(page.image, line.points, background)
            if image is None:
                yield SkippedLine(
                    str(page.path), line.line_id, line.problem or "polygon outside the page"
                )
            else:
                yield LineRecord(
                    image, line.text, fmt.name, page.document, page.page_id, line.line_id
                )


def xml_files(source: Path) -> list[Path]:
    if not source.is_dir():
        raise DatasetError(f"source {source} is not a directory")
    paths = sorted(source.rglob("*.xml"))
    if not paths:
        raise DatasetError(f"no page XML files (*.xml) in {source}")
    return paths


def parse_xml(path: Path) -> tuple[ET.Element, str]:
    """The root with namespaces stripped from every tag (so one reader serves every schema
    version), and the root's namespace."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise DatasetError(f"{path}: malformed XML: {e}") from e
    except OSError as e:
        raise DatasetError(f"{path}: not readable: {e}") from e
    namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root, namespace


def resolve_image(xml_path: Path, name: str) -> Path:
    """The page image: next to the XML or one folder up (Transkribus puts XML in page/), by the
    name as written or, for paths from another machine, by its last component."""
    name = name.strip()
    base = PureWindowsPath(name).name if "\\" in name else Path(name).name
    candidates = [Path(name)] if Path(name).is_absolute() else []
    for folder in (xml_path.parent, xml_path.parent.parent):
        candidates += [folder / name, folder / base]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{xml_path}: image {name!r} not found (looked for {candidates[0]})")


def polygon_line(line_id: str, text: str, points: str | None, scale=(1.0, 1.0)) -> PageLine:
    """A line from a points attribute, 'x1,y1 x2,y2 ...' (PAGE, ALTO 4) or 'x1 y1 x2 y2 ...'
    (ALTO 2/3), multiplied by `scale` (x, y); a line with a problem if it is not a polygon."""
    numbers = [float(n) for n in _NUMBER.findall(points or "")]
    if len(numbers) % 2 or len(numbers) < 6:
        return PageLine(line_id, text, [], f"not a polygon: points {points!r}")
    return PageLine(
        line_id, text, [(x * scale[0], y * scale[1]) for x, y in zip(numbers[0::2], numbers[1::2])]
    )
