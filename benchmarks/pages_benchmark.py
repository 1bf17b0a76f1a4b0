"""Pages benchmark: line detection and end-to-end page reading on the Hooker eval pages.

    python -m benchmarks.pages_benchmark --detector DIR --lines DIR \\
        [--data-dir ../shared/data/htr/hooker] [--eval-pages data/hooker_eval_pages.txt] \\
        [--limit N] [--output pages.json] [--drawing docs/images/page_regions.png]

`--detector` and `--lines` are pushed models (a model's directory of versions, or one version).
For each eval page (never trained on by either model, split by page as data.lines and
data.pages split) the page goes through serving.paragraph in process, as `serving.recognize`
reads it, and is compared with its PAGE-XML:

- **detection**: each detected polygon against each true line polygon (every TextLine that can
  be drawn, text or not), IoU of their pixels (rasterized at most 1024 px per side); detections
  and true lines are paired one to one maximizing total IoU (scipy's linear_sum_assignment), and
  a pair with IoU >= 0.5 is a hit. Precision = hits / detections, recall = hits / true lines,
  mean IoU = the mean over true lines of their pair's IoU (0 when unpaired);
- **page CER**: the page's text (detected lines top to bottom, joined by newlines) against its
  transcription (true lines in reading order, mapped into the charset, joined by newlines),
  pooled over pages (evaluation.text_metrics); newlines count as characters, so a missed or
  split line costs one;
- **seconds per page**: the wall time of `recognize` (decode, detector, regions, crops, line
  model), on whatever CPUs the machine has.

`--true-masks` replaces the detector by the page's own target mask (data.page_masks at
`--mask-size`) as probabilities: a perfect detector, which separates what the post-processing
and the line model lose from what the detector loses.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from common.quiet import quiet
from serving.page_regions import RegionOptions

DEFAULT_DATA_DIR = "../shared/data/htr/hooker"
DEFAULT_EVAL_PAGES = "data/hooker_eval_pages.txt"
MASK_SIDE = 1024  # IoU is computed on masks of at most this many pixels per side
HIT_IOU = 0.5


def polygon_masks(polygons, page_size: tuple[int, int]) -> np.ndarray:
    """bool [len(polygons), h, w]: each polygon filled, on the page scaled to MASK_SIDE."""
    width, height = page_size
    scale = min(1.0, MASK_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    masks = []
    for points in polygons:
        mask = Image.new("1", size, 0)
        if len(points) >= 3:
            ImageDraw.Draw(mask).polygon([(x * scale, y * scale) for x, y in points], fill=1)
        masks.append(np.asarray(mask, dtype=bool))
    return np.stack(masks) if masks else np.zeros((0, size[1], size[0]), bool)


def iou_matrix(detected: np.ndarray, true: np.ndarray) -> np.ndarray:
    """IoU [len(detected), len(true)] of two stacks of masks."""
    a = detected.reshape(len(detected), -1).astype(np.float32)
    b = true.reshape(len(true), -1).astype(np.float32)
    intersection = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1), 0.0)


def match(iou: np.ndarray) -> tuple[int, list[float]]:
    """(hits, each true line's paired IoU, 0 when unpaired) of the one-to-one pairing."""
    from scipy.optimize import linear_sum_assignment

    paired = np.zeros(iou.shape[1])
    if iou.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        paired[cols] = iou[rows, cols]
    return int((paired >= HIT_IOU).sum()), paired.tolist()


class TrueMaskDetector:
    """A perfect detector: the page's target mask (data.page_masks), one-hot, for `record`."""

    def __init__(self, size: int):
        self.size, self.model_dir = size, f"true masks at {size} x {size}"
        self.record: Any = None  # the page being read (evaluate_page sets it)

    def predict(self, images: list) -> list:
        from data.page_masks import page_mask

        page_size = self.record.image.shape[::-1]
        mask = page_mask([line.points for line in self.record.lines], page_size, self.size)
        return [np.eye(3, dtype=np.float32)[mask] for _ in images]


def evaluate_page(recognizer, record) -> dict:
    from data.charset import to_line_charset
    from serving.images import encode_image

    data = encode_image(record.image)
    if isinstance(recognizer.detector, TrueMaskDetector):
        recognizer.detector.record = record
    start = time.perf_counter()
    page = recognizer.recognize(data, name=record.page)
    seconds = time.perf_counter() - start
    size = (page.width, page.height)
    true_polygons = [line.points for line in record.lines]
    iou = iou_matrix(
        polygon_masks([line.polygon for line in page.lines], size),
        polygon_masks(true_polygons, size),
    )
    hits, paired = match(iou)
    texts = [to_line_charset(line.text) for line in record.lines]
    return {
        "page": record.page,
        "detected": len(page.lines),
        "true": len(record.lines),
        "hits": hits,
        "paired_iou": paired,
        "reference": "\n".join(text for text in texts if text),
        "hypothesis": page.text,
        "seconds": seconds,
        "result": page,
        "png": data,
    }


def summarize(pages: list) -> dict:
    from evaluation.text_metrics import character_error_rate

    detected = sum(p["detected"] for p in pages)
    true = sum(p["true"] for p in pages)
    hits = sum(p["hits"] for p in pages)
    ious = [iou for p in pages for iou in p["paired_iou"]]
    seconds = [p["seconds"] for p in pages]
    return {
        "pages": len(pages),
        "true_lines": true,
        "detected_lines": detected,
        "precision_at_iou_0.5": hits / detected if detected else 0.0,
        "recall_at_iou_0.5": hits / true if true else 0.0,
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "page_cer": character_error_rate(
            [p["reference"] for p in pages], [p["hypothesis"] for p in pages]
        ),
        "seconds_per_page_mean": statistics.fmean(seconds),
        "seconds_per_page_median": statistics.median(seconds),
    }


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pages_benchmark", description=__doc__.split("\n")[0]
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--detector", help="pushed line detector (dir or version)")
    which.add_argument(
        "--true-masks", action="store_true", help="a perfect detector: the pages' target masks"
    )
    parser.add_argument("--mask-size", type=int, default=256, help="with --true-masks (256)")
    parser.add_argument(
        "--padding",
        type=float,
        default=RegionOptions.padding,
        help=f"regions' padding, a fraction of line height ({RegionOptions.padding})",
    )
    parser.add_argument("--lines", required=True, help="pushed line model (dir or version)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=Path)
    parser.add_argument("--eval-pages", default=DEFAULT_EVAL_PAGES, type=Path)
    parser.add_argument("--limit", type=int, default=0, help="first N eval pages only (0: all)")
    parser.add_argument("--output", type=Path, help="write the figures and per-page rows as JSON")
    parser.add_argument("--drawing", type=Path, help="save the first page with its regions drawn")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    quiet(args.verbose)
    from tqdm import tqdm

    from data.errors import DatasetError
    from data.lines import read_page_list
    from data.pages import PageRecord, read_xml_page_records
    from data.pagexml import PAGE_XML
    from serving.images import PredictionError
    from serving.paragraph import (
        ParagraphTextRecognizer,
        SavedModelDetector,
        SavedModelReader,
    )
    from serving.recognize import draw_regions

    try:
        eval_pages = set(read_page_list(args.eval_pages))
        detector = (
            TrueMaskDetector(args.mask_size)
            if args.true_masks
            else SavedModelDetector(args.detector)
        )
        recognizer = ParagraphTextRecognizer(
            detector, SavedModelReader(args.lines), RegionOptions(padding=args.padding)
        )
        print(f"detector {recognizer.detector.model_dir}, lines {recognizer.reader.model_dir}")
        records = [
            record
            for record in tqdm(
                read_xml_page_records(args.data_dir, PAGE_XML),
                desc="reading PAGE-XML",
                unit="record",
                file=sys.stderr,
            )
            if isinstance(record, PageRecord) and record.page in eval_pages
        ]
    except (DatasetError, PredictionError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    records = records[: args.limit] if args.limit else records
    pages = [
        evaluate_page(recognizer, record)
        for record in tqdm(records, desc="recognizing", unit="page", file=sys.stderr)
    ]
    figures = summarize(pages)
    for key, value in figures.items():
        print(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.drawing and pages:
        drawing = draw_regions(pages[0]["png"], pages[0]["result"])
        drawing.thumbnail((900, 900))
        drawing.save(args.drawing)
        print(f"drawing of {pages[0]['page']}: {args.drawing}")
    if args.output:
        rows = [
            {k: v for k, v in page.items() if k not in ("result", "png", "paired_iou")}
            for page in pages
        ]
        args.output.write_text(json.dumps({"figures": figures, "pages": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
