"""Real handwriting (PAGE-XML, ALTO or IAM folders) -> sharded line TFRecords for the pipeline.

    python -m data.lines --format {pagexml,alto,iam} --source DIR --out DIR
        [--eval-fraction 0.1] [--seed 0] [--eval-pages FILE] [--num-shards 4]

Writes OUT/train/ and OUT/eval/ (data.tfrecords' GZIP shards of tf.Example: IMAGE_KEY PNG,
TEXT_KEY, SOURCE_KEY, DOCUMENT_KEY, PAGE_KEY, WRITER_KEY) and OUT/metadata.json, and prints a
report. The split is by page so no page is in both: pages listed in --eval-pages are eval, and
further pages drawn with --seed bring eval up to round(eval_fraction x pages), so a list of 10%
of the pages with the default fraction is exactly the eval split. IAM uses its official task
split (data.iam) plus --eval-pages. Text is mapped into LINE_CHARACTERS by data.charset; lines
that end up with empty text or that cannot be cropped are skipped and counted.
"""

import argparse
import io
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from common.quiet import quiet
from data.alto import read_alto
from data.charset import CharsetCounts, to_line_charset
from data.errors import DatasetError
from data.features import (
    DEFAULT_NUM_SHARDS,
    DOCUMENT_KEY,
    EVAL_SPLIT,
    IMAGE_KEY,
    PAGE_KEY,
    SOURCE_KEY,
    TEXT_KEY,
    TRAIN_SPLIT,
    WRITER_KEY,
)
from data.iam import official_split, read_iam
from data.line_crops import SkippedLine
from data.pagexml import read_pagexml

READERS = {"pagexml": read_pagexml, "alto": read_alto, "iam": read_iam}
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)
MAX_LISTED_SKIPS = 10  # the report names this many skipped lines per reason; all are counted


def convert(
    fmt: str,
    source,
    out,
    eval_fraction: float = 0.1,
    seed: int = 0,
    eval_pages=(),
    num_shards: int = DEFAULT_NUM_SHARDS,
    progress: bool = True,
    max_length: int = 0,
) -> dict:
    """Convert, write OUT/metadata.json and return the report (see format_report). With
    `max_length`, lines of more characters (more than a model reads) are skipped and counted."""
    if fmt not in READERS:
        raise DatasetError(f"unknown format {fmt!r}; expected one of {sorted(READERS)}")
    if not 0 <= eval_fraction < 1:
        raise DatasetError(f"eval fraction must be in [0, 1), got {eval_fraction}")
    source, out, eval_pages = Path(source), Path(out), set(eval_pages)
    official = official_split(source) if fmt == "iam" else None
    started = time.monotonic()
    by_page: dict[str, list] = {}
    skipped: list = []
    counts = CharsetCounts()
    for item in tqdm(
        READERS[fmt](source), desc=f"reading {fmt}", unit="line", disable=not progress
    ):
        if isinstance(item, SkippedLine):
            skipped.append(item)
            continue
        text = to_line_charset(item.text, counts)
        problem = (
            "empty text"
            if not text
            else f"longer than max_length {max_length}"
            if max_length and len(text) > max_length
            else "not in the task split"
            if official is not None and item.line_id not in official
            else ""
        )
        if problem:
            skipped.append(SkippedLine(item.page, item.line_id, problem))
        else:
            # encoded at once: a page's PNG lines are far smaller than its decoded crops
            by_page.setdefault(item.page, []).append((_example(item, text), text, item.line_id))
    if not by_page:
        raise DatasetError(f"no usable lines in {source} ({len(skipped)} skipped)")
    eval_set = (
        choose_eval_pages(by_page, eval_fraction, seed, eval_pages)
        if official is None
        else eval_pages
    )
    split_lines: dict[str, list] = {split: [] for split in SPLITS}
    for page, lines in by_page.items():
        for example, text, line_id in lines:
            split = (
                EVAL_SPLIT if page in eval_set else official[line_id] if official else TRAIN_SPLIT
            )
            split_lines[split].append((example, text, page))
    from data.tfrecords import write_shards  # TensorFlow loads here, after `main` quieted it

    for split in SPLITS:
        write_shards([example for example, _, _ in split_lines[split]], out, split, num_shards)
    report = {
        "format": fmt,
        "source": str(source.resolve()),
        "out": str(out.resolve()),
        "splits": {split: _split_summary(lines) for split, lines in split_lines.items()},
        "skipped": dict(Counter(s.reason for s in skipped).most_common()),
        "skipped_lines": [[s.file, s.line_id, s.reason] for s in skipped],
        "mapped": dict(counts.mapped.most_common()),
        "dropped": dict(counts.dropped.most_common()),
        "unknown_eval_pages": sorted(eval_pages - set(by_page)),
        "seconds": round(time.monotonic() - started, 1),
    }
    _write_metadata(report, source, out, seed, eval_fraction)
    return report


def read_line_images(out_dir, split: str, limit: int | None = None) -> tuple:
    """(uint8 gray line images, texts) of a split this module wrote, in order (at most `limit`)."""
    from data.tfrecords import read_examples

    images: list = []
    texts: list = []
    for features in read_examples(out_dir, split, "line examples"):
        if len(images) == limit:
            break
        png = features[IMAGE_KEY].bytes_list.value[0]
        images.append(np.asarray(Image.open(io.BytesIO(png)).convert("L")))
        texts.append(features[TEXT_KEY].bytes_list.value[0].decode())
    return images, texts


def choose_eval_pages(pages, eval_fraction: float, seed: int, eval_pages=()) -> set[str]:
    """`eval_pages` (those present) plus pages drawn with `seed` up to round(fraction x pages)."""
    pages = sorted(pages)
    forced = set(eval_pages) & set(pages)
    rest = [p for p in pages if p not in forced]
    # At least one eval page when there is a fraction and more than one page: an empty eval split
    # would leave nothing to evaluate.
    target = max(
        round(eval_fraction * len(pages)), 1 if eval_fraction > 0 and len(pages) > 1 else 0
    )
    wanted = max(0, min(len(rest), target - len(forced)))
    return forced | set(
        np.random.default_rng(seed).choice(rest, size=wanted, replace=False).tolist()
    )


def read_page_list(path) -> list[str]:
    """Page ids, one per line; blank lines and # comments ignored."""
    try:
        rows = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DatasetError(f"eval pages file {path} is not readable: {e}") from e
    return [row.strip() for row in rows if row.strip() and not row.startswith("#")]


def format_report(report: dict) -> str:
    out = [f"{report['format']} {report['source']} -> {report['out']} in {report['seconds']} s"]
    for split, summary in report["splits"].items():
        out.append(
            f"{split}: {summary['lines']} lines, {summary['pages']} pages, "
            f"{summary['characters']} characters, charset ({len(summary['charset'])}): "
            f"{summary['charset']!r}"
        )
    out.append(f"skipped {len(report['skipped_lines'])} lines")
    for reason, n in report["skipped"].items():
        out.append(
            f"  {n} {reason}"
            + (
                ""
                if n <= MAX_LISTED_SKIPS
                else f" (first {MAX_LISTED_SKIPS}; metadata.json lists all)"
            )
        )
        lines = [(file, line_id) for file, line_id, why in report["skipped_lines"] if why == reason]
        out += [f"    {file} line {line_id!r}" for file, line_id in lines[:MAX_LISTED_SKIPS]]
    for name in ("mapped", "dropped"):
        items = ", ".join(f"{char!r} {n}" for char, n in report[name].items())
        out.append(
            f"{name} characters: {sum(report[name].values())}" + (f" ({items})" if items else "")
        )
    if report["unknown_eval_pages"]:
        out.append(f"eval pages not in the source: {report['unknown_eval_pages']}")
    return "\n".join(out)


def _split_summary(lines) -> dict:
    texts = [text for _, text, _ in lines]
    return {
        "lines": len(lines),
        "pages": len({page for _, _, page in lines}),
        "characters": sum(map(len, texts)),
        "charset": "".join(sorted(set("".join(texts)))),
    }


def _example(record, text: str) -> bytes:
    import tensorflow as tf

    png = io.BytesIO()
    Image.fromarray(record.image).save(png, format="PNG")
    values = {
        IMAGE_KEY: png.getvalue(),
        TEXT_KEY: text,
        SOURCE_KEY: record.source,
        DOCUMENT_KEY: record.document,
        PAGE_KEY: record.page,
        WRITER_KEY: record.writer,
    }
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                key: tf.train.Feature(
                    bytes_list=tf.train.BytesList(
                        value=[v if isinstance(v, bytes) else v.encode("utf-8")]
                    )
                )
                for key, v in values.items()
            }
        )
    ).SerializeToString(deterministic=True)


def _write_metadata(report: dict, source: Path, out: Path, seed: int, eval_fraction: float):
    """OUT/metadata.json (data.versions): provenance (every input file's sha256) and the report."""
    from data.versions import file_digests, write_metadata

    write_metadata(
        out,
        dataset=f"{report['format']} lines",
        source=source.resolve(),
        inputs=file_digests(source),
        args={"seed": seed, "eval_fraction": eval_fraction},
        **{key: value for key, value in report.items() if key not in ("source", "out")},
    )


def conversion_parser(prog: str, description: str, formats) -> argparse.ArgumentParser:
    """The options every page-folder converter takes (this one and data.pages): format, source,
    out, the page split (eval fraction, seed, eval pages), shards, progress and verbosity."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--format", required=True, choices=sorted(formats))
    parser.add_argument(
        "--source", required=True, type=Path, help="folder of page XML + images, or IAM's root"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output directory (gets train/, eval/, metadata.json)",
    )
    parser.add_argument(
        "--eval-fraction", type=float, default=0.1, help="fraction of pages for eval (0.1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the page split (0)")
    parser.add_argument(
        "--eval-pages", type=Path, help="file of page ids (one a line) that must be eval"
    )
    parser.add_argument("--num-shards", type=int, default=DEFAULT_NUM_SHARDS)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log and warnings")
    return parser


def main(argv=None) -> int:
    parser = conversion_parser("python -m data.lines", __doc__.split("\n\n")[0], READERS)
    parser.add_argument(
        "--max-length", type=int, default=0, help="skip lines of more characters (0: keep all)"
    )
    args = parser.parse_args(argv)
    quiet(args.verbose)
    try:
        eval_pages = read_page_list(args.eval_pages) if args.eval_pages else ()
        report = convert(
            args.format,
            args.source,
            args.out,
            args.eval_fraction,
            args.seed,
            eval_pages,
            args.num_shards,
            not args.no_progress,
            args.max_length,
        )
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
