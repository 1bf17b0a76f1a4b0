"""Real pages (PAGE-XML or ALTO folders, IAM forms) -> sharded page TFRecords for the line detector.

    python -m data.pages --format {pagexml,alto,iam} --source DIR --out DIR [--page-size 256]
        [--max-side 1024] [--eval-fraction 0.1] [--seed 0] [--eval-pages FILE] [--num-shards 4]

One tf.Example per page (data.features): IMAGE_KEY the page as a gray PNG as scanned (dark ink on
light paper), scaled down, keeping its aspect ratio, to at most --max-side pixels on its longer
side (the detector stretches it to page-size anyway; this bounds the examples' size); MASK_KEY
its target mask at page-size x page-size (data.page_masks: lines alternate odd/even in reading
order, overlaps are background); TEXT_KEY its lines' texts in reading order, mapped into
LINE_CHARACTERS (data.charset) and joined by newlines, for a page's character error rate
(lines without text stay in the mask, since they are ink on the page, but add no text);
LINE_COUNT_KEY, SOURCE_KEY, DOCUMENT_KEY, PAGE_KEY and WRITER_KEY.

Pages are read as data.lines reads them (same page ids, reading order, errors naming the file)
and split the same way, by page with data.lines.choose_eval_pages, so a page is eval for the
detector exactly when its lines are eval for the line models. IAM: a form is eval when its lines
are in the task's test set (or it is in --eval-pages), and becomes a paragraph as in the FSDL
labs: the form cropped to the union of its line boxes plus a margin, without the printed text.
Skipped and counted in the report: lines that cannot be drawn (malformed coordinates, polygon
outside the page), pages without any line, IAM forms with no line in the task split.
"""

import io
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from common.pages import MASK_KEY
from common.quiet import quiet
from data.alto import ALTO
from data.charset import CharsetCounts, to_line_charset
from data.errors import DatasetError
from data.features import (
    DEFAULT_NUM_SHARDS,
    DOCUMENT_KEY,
    EVAL_SPLIT,
    IMAGE_KEY,
    LINE_COUNT_KEY,
    PAGE_KEY,
    SOURCE_KEY,
    TEXT_KEY,
    TRAIN_SPLIT,
    WRITER_KEY,
)
from data.iam import form_xml, official_split
from data.line_crops import SkippedLine, load_gray
from data.lines import choose_eval_pages, conversion_parser, format_report, read_page_list
from data.page_masks import box_points, combine_lines, line_masks
from data.pagexml import PAGE_XML
from data.xml_pages import PageLine, XmlFormat, xml_pages

DEFAULT_PAGE_SIZE = 256  # the detector's input, S x S
DEFAULT_MAX_SIDE = 1024  # stored pages' longer side at most (enough for a detector of 1024 px)
IAM_MARGIN = 16  # pixels of form kept around the union of a paragraph's line boxes
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)


@dataclass(frozen=True)
class PageRecord:
    image: np.ndarray  # uint8 [H, W] as in the source (dark ink on light paper)
    lines: list  # [PageLine] in reading order, points in the image's pixels
    source: str  # "pagexml", "alto", "iam" or "emnist"
    document: str
    page: str  # unique within a source: the split unit
    writer: str = ""


def read_xml_page_records(source, fmt: XmlFormat) -> Iterator[PageRecord | SkippedLine]:
    """Every `fmt` page under `source` (data.xml_pages.xml_pages: same pages, ids and documents
    as the line reader) with its drawable lines; the other lines and non-`fmt` XML files come as
    SkippedLine."""
    for page in xml_pages(source, fmt):
        if isinstance(page, SkippedLine):
            yield page
            continue
        lines = []
        for line in fmt.lines(page.root, page.image, page.image_path):
            problem = line.problem or (
                "" if _on_page(line.points, page.image) else "polygon outside the page"
            )
            if problem:
                yield SkippedLine(str(page.path), line.line_id, problem)
            else:
                lines.append(line)
        yield PageRecord(page.image, lines, fmt.name, page.document, page.page_id)


def read_iam_paragraphs(source) -> Iterator[PageRecord | SkippedLine]:
    """Every form of IAM's ascii/lines.txt as a paragraph crop with its line boxes (text from the
    form's XML when it has the line, else lines.txt's words, as data.iam reads lines)."""
    source = Path(source)
    lines_txt = source / "ascii" / "lines.txt"
    if not lines_txt.is_file():
        raise DatasetError(f"no IAM pages: {lines_txt} does not exist")
    forms: dict[str, list] = {}
    for number, row in enumerate(lines_txt.read_text(encoding="utf-8").splitlines(), 1):
        if not row.strip() or row.startswith("#"):
            continue
        fields = row.split(" ", 8)
        try:
            x, y, width, height = (float(v) for v in fields[4:8])
        except ValueError:
            x = y = width = height = 0.0
        if len(fields) != 9 or width < 1 or height < 1:
            yield SkippedLine(f"{lines_txt}:{number}", fields[0], "malformed lines.txt row")
            continue
        form_id = fields[0].rsplit("-", 1)[0]
        forms.setdefault(form_id, []).append((fields[0], (x, y, width, height), fields[8]))
    for form_id, rows in forms.items():
        texts, writer = form_xml(source, form_id)
        form = load_gray(source / "forms" / f"{form_id}.png")
        boxes = np.array([box for _, box, _ in rows])
        left, top = np.maximum(0, boxes[:, :2].min(axis=0) - IAM_MARGIN).astype(int)
        right, bottom = (boxes[:, :2] + boxes[:, 2:]).max(axis=0).astype(int) + IAM_MARGIN
        if left >= form.shape[1] or top >= form.shape[0]:
            yield SkippedLine(f"{source}/forms/{form_id}.png", "", "line boxes outside the form")
            continue
        lines = [
            PageLine(
                line_id,
                texts.get(line_id, words.replace("|", " ")),
                box_points(x - left, y - top, w, h),
            )
            for line_id, (x, y, w, h), words in rows
        ]
        yield PageRecord(form[top:bottom, left:right], lines, "iam", form_id, form_id, writer)


READERS = {
    "pagexml": lambda source: read_xml_page_records(source, PAGE_XML),
    "alto": lambda source: read_xml_page_records(source, ALTO),
    "iam": read_iam_paragraphs,
}


class PageExample(NamedTuple):
    example: bytes  # the serialized tf.Example
    text: str  # the page's text, lines joined by newlines
    lines: int
    line_pixels: int  # mask pixels inside any line polygon
    kept_pixels: int  # those inside exactly one (the rest are overlaps, background)
    lines_without_pixels: int  # lines whose every pixel overlaps another line


def page_example(
    record: PageRecord,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_side: int = DEFAULT_MAX_SIDE,
    counts: CharsetCounts | None = None,
) -> PageExample:
    """A page's example (see the module docstring for the features) and its mask's figures."""
    height, width = record.image.shape
    masks = line_masks([line.points for line in record.lines], (width, height), page_size)
    mask = combine_lines(masks)
    image = Image.fromarray(record.image)
    scale = max_side / max(width, height)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    texts = (to_line_charset(line.text, counts) for line in record.lines)
    text = "\n".join(t for t in texts if t)
    values = {
        IMAGE_KEY: _png(image),
        MASK_KEY: _png(Image.fromarray(mask)),
        TEXT_KEY: text,
        SOURCE_KEY: record.source,
        DOCUMENT_KEY: record.document,
        PAGE_KEY: record.page,
        WRITER_KEY: record.writer,
        LINE_COUNT_KEY: len(record.lines),
    }
    kept = masks & (mask > 0)
    return PageExample(
        _serialize(values),
        text,
        len(record.lines),
        int(masks.any(axis=0).sum()),
        int(kept.any(axis=0).sum()),
        int((~kept.any(axis=(1, 2))).sum()),
    )


def convert(
    fmt: str,
    source,
    out,
    page_size: int = DEFAULT_PAGE_SIZE,
    eval_fraction: float = 0.1,
    seed: int = 0,
    eval_pages=(),
    num_shards: int = DEFAULT_NUM_SHARDS,
    progress: bool = True,
    max_side: int = DEFAULT_MAX_SIDE,
) -> dict:
    """Convert, write OUT/metadata.json and return the report (data.lines.format_report prints
    it: its splits count lines, pages and characters as the line converter's do)."""
    if fmt not in READERS:
        raise DatasetError(f"unknown format {fmt!r}; expected one of {sorted(READERS)}")
    if not 0 <= eval_fraction < 1:
        raise DatasetError(f"eval fraction must be in [0, 1), got {eval_fraction}")
    if page_size < 8 or max_side < page_size:
        raise DatasetError(f"need 8 <= page size <= max side, got {page_size} and {max_side}")
    source, out, eval_pages = Path(source), Path(out), set(eval_pages)
    official = official_split(source) if fmt == "iam" else None
    started = time.monotonic()
    pages, skipped, counts, task_eval = {}, [], CharsetCounts(), set()
    for item in tqdm(READERS[fmt](source), desc=f"reading {fmt} pages", disable=not progress):
        if isinstance(item, SkippedLine):
            skipped.append(item)
            continue
        if official is not None:
            task_splits = {
                official[line.line_id] for line in item.lines if line.line_id in official
            }
            if not task_splits:
                skipped.append(SkippedLine(item.page, "", "not in the task split"))
                continue
            if EVAL_SPLIT in task_splits:
                task_eval.add(item.page)
        if not item.lines:
            skipped.append(SkippedLine(item.page, "", "page without lines"))
            continue
        pages[item.page] = page_example(item, page_size, max_side, counts)
    if not pages:
        raise DatasetError(f"no pages with lines in {source} ({len(skipped)} skipped)")
    eval_set = (
        choose_eval_pages(pages, eval_fraction, seed, eval_pages)
        if official is None
        else eval_pages | task_eval
    )
    split_pages: dict = {split: [] for split in SPLITS}
    for page, example in pages.items():
        split_pages[EVAL_SPLIT if page in eval_set else TRAIN_SPLIT].append(example)
    from data.tfrecords import write_shards  # TensorFlow loads here, after `main` quieted it

    for split, rows in split_pages.items():
        write_shards([example.example for example in rows], out, split, num_shards)
    report = {
        "format": fmt,
        "source": str(source.resolve()),
        "out": str(out.resolve()),
        "page_size": page_size,
        "splits": {split: _split_summary(rows) for split, rows in split_pages.items()},
        "skipped": dict(Counter(s.reason for s in skipped).most_common()),
        "skipped_lines": [[s.file, s.line_id, s.reason] for s in skipped],
        "mapped": dict(counts.mapped.most_common()),
        "dropped": dict(counts.dropped.most_common()),
        "unknown_eval_pages": sorted(eval_pages - set(pages)),
        "seconds": round(time.monotonic() - started, 1),
    }
    from data.versions import file_digests, write_metadata

    write_metadata(
        out,
        dataset=f"{fmt} pages",
        source=source.resolve(),
        inputs=file_digests(source),
        args={
            "page_size": page_size,
            "max_side": max_side,
            "seed": seed,
            "eval_fraction": eval_fraction,
        },
        **{key: value for key, value in report.items() if key not in ("source", "out")},
    )
    return report


def _on_page(points, image: np.ndarray) -> bool:
    """Whether the polygon's bounding box meets the page at all (the mask clips the rest)."""
    height, width = image.shape
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return max(xs) >= 0 and max(ys) >= 0 and min(xs) <= width - 1 and min(ys) <= height - 1


def _split_summary(examples: list) -> dict:
    """data.lines' split summary (lines, pages, characters, charset) and the masks' overlaps."""
    text = "".join(example.text for example in examples)
    drawn = sum(example.line_pixels for example in examples)
    return {
        "lines": sum(example.lines for example in examples),
        "pages": len(examples),
        "characters": len(text.replace("\n", "")),
        "charset": "".join(sorted(set(text) - {"\n"})),
        "line_pixels_lost_to_overlaps": round(
            1 - sum(example.kept_pixels for example in examples) / max(drawn, 1), 4
        ),
        "lines_without_pixels": sum(example.lines_without_pixels for example in examples),
    }


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _serialize(values: dict) -> bytes:
    """A tf.Example of str/bytes (bytes_list) and int (int64_list) features."""
    import tensorflow as tf

    def feature(value):
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        data = value if isinstance(value, bytes) else value.encode("utf-8")
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))

    features = {key: feature(value) for key, value in values.items()}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(
        deterministic=True
    )


def main(argv=None) -> int:
    parser = conversion_parser("python -m data.pages", __doc__.split("\n\n")[0], READERS)
    parser.add_argument(
        "--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="mask size S (S x S; 256)"
    )
    parser.add_argument(
        "--max-side", type=int, default=DEFAULT_MAX_SIDE, help="stored pages' longer side (1024)"
    )
    args = parser.parse_args(argv)
    quiet(args.verbose)
    try:
        report = convert(
            args.format,
            args.source,
            args.out,
            args.page_size,
            args.eval_fraction,
            args.seed,
            read_page_list(args.eval_pages) if args.eval_pages else (),
            args.num_shards,
            not args.no_progress,
            args.max_side,
        )
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    for split, summary in report["splits"].items():
        print(
            f"{split} masks ({args.page_size}x{args.page_size}): "
            f"{summary['line_pixels_lost_to_overlaps']:.2%} of line pixels are overlaps "
            f"(background), {summary['lines_without_pixels']} lines without a pixel"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
