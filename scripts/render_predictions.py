"""Render a pushed line model's readings of eval lines to a PNG: each line, its text, the prediction.

The lines are the first --count examples of the eval split of a line examples directory
(data.sentences.read_line_examples), drawn with its eval (test-glyph) bank exactly as Transform
draws them, and read through the pushed model's serving signature (serving.LinePredictor).

    python scripts/render_predictions.py --root artifacts --out predictions.png [--count 12]
    python scripts/render_predictions.py --model artifacts/serving/lines --examples-dir DIR \\
        --glyph-bank DIR/glyphs-eval.npz --max-length 34 --min-overlap 0 --max-overlap 0.33 \\
        --out predictions.png

With --root, the newest pushed version under <root>/serving/lines is read, and the experiment
config of the newest lines Trainer run under the root (its training_metrics.json) gives the
synthesis arguments (max_length, min_overlap, max_overlap) and picks the line examples directory
prepared with the same dataset arguments, with its eval bank; explicit options override any of
these.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from common.push_layout import LINES_MODEL
from data.errors import DatasetError
from data.features import EVAL_SPLIT
from data.sentences import read_line_examples
from data.versions import COMPLETE_MARKER, SPAN_PREFIX, spans
from evaluation.line_grid import save_prediction_grid
from evaluation.text_metrics import character_error_rate
from serving.predictors import LinePredictor, PredictionError, resolve_model_dir
from trainer import METRICS_FILE
from trainer.datasets.emnist_lines import EmnistLinesDataset
from transform.line_synthesis import load_glyph_bank, synthesize_lines

SYNTHESIS_KEYS = ("max_length", "min_overlap", "max_overlap")
LINES_PIPELINE = f"text-recognizer-{LINES_MODEL}"


def trained_dataset_args(root: Path) -> dict:
    """The dataset_args of the newest lines Trainer run under `root`, from its training_metrics.json."""
    runs = (root / "pipelines" / LINES_PIPELINE / "Trainer" / "model_run").glob(f"*/{METRICS_FILE}")
    newest = max(runs, key=lambda p: p.stat().st_mtime, default=None)
    if newest is None:
        raise DatasetError(
            f"no lines Trainer run under {root} (run the lines pipeline with --root {root} first)"
        )
    return json.loads(newest.read_text())["config"]["dataset_args"]


def line_examples_for(root: Path, dataset_args: dict) -> Path:
    """The newest span of line examples under `root` prepared with `dataset_args`."""
    for series in sorted((root / "line_examples").glob("*")):
        found = spans(series)
        marker = series / f"{SPAN_PREFIX}{found[-1]}" / COMPLETE_MARKER if found else None
        if marker and json.loads(marker.read_text())[-1] == dataset_args:
            return marker.parent
    raise DatasetError(
        f"no complete line examples under {root / 'line_examples'} for {dataset_args}"
    )


def run_eval_bank(root: Path | None) -> Path:
    """The eval glyph bank that the newest run under `root` built (its GlyphBanks step)."""
    from components.glyph_banks import run_bank_paths
    from training.outputs import latest_run

    banks = run_bank_paths(latest_run(str(root / "metadata.sqlite"))) if root else {}
    if not banks:
        raise DatasetError("give --glyph-bank (or --root of a lines run with its GlyphBanks step)")
    return Path(banks["glyph_banks"][1])


def synthesis_args(trained: dict, given: dict) -> dict:
    """max_length/min_overlap/max_overlap: the given ones, the rest as the model was trained."""
    if all(given[k] is not None for k in SYNTHESIS_KEYS):
        return dict(given)
    recorded = EmnistLinesDataset().synthesis(trained)
    return {k: recorded[k] if given[k] is None else given[k] for k in SYNTHESIS_KEYS}


def resolve_inputs(args) -> tuple:
    """(model version dir, examples dir, eval bank path, synthesis args) from the options."""
    root = Path(args.root) if args.root else None
    if args.model:
        model_dir = resolve_model_dir(args.model)
    elif root:
        serving = root / "serving" / LINES_MODEL
        if not serving.is_dir():
            raise PredictionError(
                f"no pushed line model: {serving} does not exist (run the lines "
                f"pipeline with --save --root {root} first)"
            )
        model_dir = resolve_model_dir(serving)
    else:
        raise PredictionError("give --root, or --model with --examples-dir")
    if args.examples_dir:
        examples_dir = Path(args.examples_dir)
        if not (examples_dir / EVAL_SPLIT).is_dir():
            raise DatasetError(f"--examples-dir {examples_dir}: no {EVAL_SPLIT} split in it")
    elif root:
        examples_dir = line_examples_for(root, trained_dataset_args(root))
    else:
        raise DatasetError("give --examples-dir (or --root)")
    bank = Path(args.glyph_bank) if args.glyph_bank else run_eval_bank(root)
    given = {k: getattr(args, k) for k in SYNTHESIS_KEYS}
    missing = [k for k in SYNTHESIS_KEYS if given[k] is None]
    if missing and not root:
        raise DatasetError(f"without --root, give --{missing[0].replace('_', '-')}")
    trained = trained_dataset_args(root) if missing and root else {}
    return model_dir, examples_dir, bank, synthesis_args(trained, given)


def read_lines(model_dir: Path, examples_dir: Path, bank_path: Path, synthesis: dict, count: int):
    """(images uint8 [N, 28, W], truths, [(prediction, confidence)]) for the first eval lines."""
    texts, seeds = read_line_examples(examples_dir, EVAL_SPLIT)
    if not texts:
        raise DatasetError(f"{examples_dir / EVAL_SPLIT}: no eval lines")
    texts, seeds = texts[:count], seeds[:count]
    bank = load_glyph_bank(str(bank_path))
    images, _ = synthesize_lines(texts, seeds, bank, **synthesis)
    images = (images.numpy() * 255).round().astype(np.uint8)
    predictions = LinePredictor(model_dir).predict_batch(list(images))
    return images, texts, predictions


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--root", help="pipeline root: newest pushed line model and line examples")
    parser.add_argument(
        "--model", help="pushed model: a version dir, or the dir of versions (newest)"
    )
    parser.add_argument("--examples-dir", help="line examples dir (with eval/)")
    parser.add_argument(
        "--glyph-bank", help="eval glyph bank (default: the one the newest run under --root built)"
    )
    parser.add_argument(
        "--max-length", type=int, help="default: as the newest lines Trainer run under --root"
    )
    parser.add_argument(
        "--min-overlap", type=float, help="default: as the newest lines Trainer run under --root"
    )
    parser.add_argument(
        "--max-overlap", type=float, help="default: as the newest lines Trainer run under --root"
    )
    parser.add_argument("--count", type=int, default=12, help="eval lines to draw and read")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    if not args.root and not (args.model and args.examples_dir):
        parser.error("give --root, or --model and --examples-dir")
    try:
        model_dir, examples_dir, bank, synthesis = resolve_inputs(args)
        images, truths, predictions = read_lines(
            model_dir, examples_dir, bank, synthesis, args.count
        )
    except (DatasetError, PredictionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # TensorFlow's own errors (a text too long for max_length, ...)
        import tensorflow as tf

        if not isinstance(e, tf.errors.OpError):
            raise
        print(
            f"error: drawing or reading the lines failed: {e.message.splitlines()[0]}",
            file=sys.stderr,
        )
        return 1
    cer = character_error_rate(truths, [p for p, _ in predictions])
    exact = sum(p == t for (p, _), t in zip(predictions, truths))
    title = (
        f"CER {cer:.3f} on the first {len(truths)} eval lines ({exact} exact); model {model_dir}\n"
        f"lines {examples_dir}; max_length {synthesis['max_length']}, overlap "
        f"[{synthesis['min_overlap']}, {synthesis['max_overlap']}]"
    )
    save_prediction_grid(images, truths, predictions, args.out, title)
    print(
        f"{len(truths)} eval lines read by {model_dir}: CER {cer:.4f}, {exact} exact -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
