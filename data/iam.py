"""Line records from the IAM Handwriting Database in its official layout.

    SOURCE/ascii/lines.txt            id ok|err graylevel components x y w h word|word|...
    SOURCE/lines/a01/a01-000u/a01-000u-00.png   (optional: else cropped from forms/)
    SOURCE/xml/a01-000u.xml           <form writer-id=...> with <line id=... text=...>
    SOURCE/forms/a01-000u.png
    SOURCE/[task/]trainset.txt, validationset1.txt, validationset2.txt, testset.txt

The Large Writer Independent Text Line Recognition Task's files (one line id per row) define the
split: train = trainset + both validation sets (this project selects models on eval, so it has no
use for a third split), eval = testset; lines in none of them are skipped. The text is the form
XML's line @text when the XML has the line (IAM's own spelling, with punctuation attached), else
lines.txt's words joined by spaces. Lines marked `err` (doubtful segmentation) are kept, as IAM's
task lists include them. IAM may not be redistributed: download it with `python -m data.download
iam` (needs IAM_USERNAME/IAM_PASSWORD) and unpack the archives into this layout.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data.errors import DatasetError
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.line_crops import LineRecord, SkippedLine, crop_box, load_gray
from data.xml_pages import parse_xml

SPLIT_FILES = {
    "trainset.txt": TRAIN_SPLIT,
    "validationset1.txt": TRAIN_SPLIT,
    "validationset2.txt": TRAIN_SPLIT,
    "testset.txt": EVAL_SPLIT,
}
_TASK_DIRS = ("", "task", "largeWriterIndependentTextLineRecognitionTask")


def read_iam(source) -> Iterator[LineRecord | SkippedLine]:
    """Every line of ascii/lines.txt, in its order."""
    source = Path(source)
    lines_txt = source / "ascii" / "lines.txt"
    if not lines_txt.is_file():
        raise DatasetError(f"no IAM pages: {lines_txt} does not exist")
    form_id, writer = "", ""
    texts: dict[str, str] = {}
    form_image: np.ndarray | None = None
    for number, row in enumerate(lines_txt.read_text(encoding="utf-8").splitlines(), 1):
        if not row.strip() or row.startswith("#"):
            continue
        fields = row.split(" ", 8)
        if len(fields) != 9:
            yield SkippedLine(f"{lines_txt}:{number}", fields[0], "malformed lines.txt row")
            continue
        line_id, box, words = fields[0], fields[4:8], fields[8]
        if line_id.rsplit("-", 1)[0] != form_id:
            form_id = line_id.rsplit("-", 1)[0]
            (texts, writer), form_image = form_xml(source, form_id), None
        image_path = source / "lines" / form_id.split("-")[0] / form_id / f"{line_id}.png"
        image: np.ndarray | None
        if image_path.is_file():
            image = load_gray(image_path)
        else:
            if form_image is None:
                form_image = load_gray(source / "forms" / f"{form_id}.png")
            try:
                image = crop_box(form_image, *(float(v) for v in box))
            except ValueError:
                image = None
        if image is None:
            yield SkippedLine(
                f"{lines_txt}:{number}", line_id, f"bounding box {' '.join(box)} outside the form"
            )
            continue
        text = texts.get(line_id, words.replace("|", " "))
        yield LineRecord(image, text, "iam", form_id, form_id, line_id, writer)


def official_split(source) -> dict[str, str]:
    """{line id: TRAIN_SPLIT or EVAL_SPLIT} from the task's split files."""
    source = Path(source)
    split = {}
    for name, split_name in SPLIT_FILES.items():
        path = next((source / d / name for d in _TASK_DIRS if (source / d / name).is_file()), None)
        if path is None:
            raise DatasetError(f"IAM task split file {name} not found in {source} or {source}/task")
        split.update(dict.fromkeys(path.read_text().split(), split_name))
    return split


def form_xml(source: Path, form_id: str) -> tuple[dict[str, str], str]:
    """({line id: text}, writer id) of a form's XML; ({}, "") when the XML is absent."""
    path = source / "xml" / f"{form_id}.xml"
    if not path.is_file():
        return {}, ""
    root, _ = parse_xml(path)
    texts = {
        str(line.get("id")): str(line.get("text"))
        for line in root.iter("line")
        if line.get("text") is not None
    }
    return texts, root.get("writer-id", "")
