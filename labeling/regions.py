"""Line regions in Label Studio's terms: results with percent coordinates, one id per region.

Label Studio stores a shape (`polygonlabels` points, or a `rectanglelabels` box with a rotation)
in percent of the image (`original_width` x `original_height`), and a per-region TextArea as a
separate `textarea` result carrying the same `id`. `page_lines` turns one annotation into line
polygons in image pixels with their text, and reports, rather than guesses, every region it
cannot use; `prediction_results` is the inverse, for pre-annotations.
"""

from collections import defaultdict
from dataclasses import dataclass

# The labeling config's tag names (labeling.project writes it); shapes of other tags are read too.
IMAGE_TAG = "image"
POLYGON_TAG = "line_polygon"
RECTANGLE_TAG = "line_box"
TEXT_TAG = "transcription"
LINE_LABEL = "line"
SHAPE_TYPES = ("polygonlabels", "polygon", "rectanglelabels", "rectangle")
TEXT_TYPE = "textarea"


@dataclass(frozen=True)
class Problem:
    """Something in the export that is not exported, and why."""

    task: int | str
    region: str
    message: str

    def __str__(self) -> str:
        region = f" region {self.region}" if self.region else ""
        return f"task {self.task}{region}: {self.message}"


@dataclass(frozen=True)
class LabeledLine:
    points: list[tuple[int, int]]  # page-image pixels, clipped to the image
    text: str


def page_lines(
    task_id, results: list, width: int, height: int
) -> tuple[list[LabeledLine], list[Problem]]:
    """Lines of one annotation's `results` on a `width` x `height` image, top to bottom, and
    the regions left out (no text, text without a shape, rotations, a different image size)."""
    regions: dict[str, list] = defaultdict(list)
    for result in results:
        regions[str(result.get("id", ""))].append(result)
    lines, problems = [], []
    for region_id, parts in regions.items():
        line = _region_line(parts, width, height)
        if isinstance(line, str):
            problems.append(Problem(task_id, region_id, line))
        else:
            lines.append(line)
    lines.sort(key=lambda line: (_centre(line.points, 1), _centre(line.points, 0)))
    return lines, problems


def prediction_results(lines, width: int, height: int) -> list[dict]:
    """Label Studio results for `lines` of (polygon [(x, y), ...] in pixels, text): a polygon
    and its transcription per line, sharing an id."""
    results = []
    for i, (polygon, text) in enumerate(lines):
        common = {
            "id": f"line{i + 1}",
            "to_name": IMAGE_TAG,
            "original_width": width,
            "original_height": height,
            "image_rotation": 0,
        }
        points = [[100 * x / width, 100 * y / height] for x, y in polygon]
        shape = {"points": points, "closed": True}
        results.append(
            {
                **common,
                "type": "polygonlabels",
                "from_name": POLYGON_TAG,
                "value": {**shape, "polygonlabels": [LINE_LABEL]},
            }
        )
        results.append(
            {**common, "type": TEXT_TYPE, "from_name": TEXT_TAG, "value": {**shape, "text": [text]}}
        )
    return results


def _region_line(parts: list, width: int, height: int) -> LabeledLine | str:
    """The region's line, or why it is not one."""
    unknown = sorted({p.get("type") for p in parts} - {*SHAPE_TYPES, TEXT_TYPE}, key=str)
    if unknown:
        return f"unsupported result type {', '.join(map(str, unknown))}"
    shapes = [p for p in parts if p["type"] in SHAPE_TYPES]
    texts = [t for p in parts if p["type"] == TEXT_TYPE for t in p.get("value", {}).get("text", [])]
    if not shapes:
        return f"text without a region: {' / '.join(texts)!r}"
    if len(shapes) > 1:
        return f"{len(shapes)} shapes with one id"
    shape = shapes[0]
    if not any(text.strip() for text in texts):
        return "region without text"
    if len(texts) > 1:
        return f"{len(texts)} transcriptions ({' / '.join(texts)!r}): keep one"
    labeled = (shape.get("original_width"), shape.get("original_height"))
    if labeled != (width, height):
        return (
            f"labeled on a {labeled[0]} x {labeled[1]} image, but the image is "
            f"{width} x {height} (changed since?)"
        )
    if shape.get("image_rotation"):
        return f"image rotated {shape['image_rotation']} degrees in the editor"
    points = _percent_points(shape.get("value", {}), shape["type"])
    if isinstance(points, str):
        return points
    pixels = [
        (
            min(max(round(x * width / 100), 0), width - 1),
            min(max(round(y * height / 100), 0), height - 1),
        )
        for x, y in points
    ]
    return LabeledLine(pixels, texts[0])


def _percent_points(value: dict, kind: str) -> list | str:
    try:
        if kind.startswith("polygon"):
            points = [(float(x), float(y)) for x, y in value["points"]]
            return points if len(points) >= 3 else f"polygon of {len(points)} points"
        if value.get("rotation"):
            return f"rotated rectangle ({value['rotation']} degrees)"
        x, y, w, h = (float(value[key]) for key in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError) as e:
        return f"malformed {kind} value {value!r} ({e})"
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def _centre(points: list, axis: int) -> float:
    return (min(p[axis] for p in points) + max(p[axis] for p in points)) / 2
