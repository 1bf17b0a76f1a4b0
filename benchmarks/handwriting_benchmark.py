"""Real handwriting benchmark: CER and WER of line models on the Hooker letters (PAGE-XML).

    python -m benchmarks.handwriting_benchmark [--data-dir ../shared/data/htr/hooker]
        [--runs scratch augment warm attention] [--epochs 10] [--height 32] [--max-width 640]

Every run is the whole pipeline (BeamDagRunner) on the same conversion of the pages, split by
page with data/hooker_eval_pages.txt as the eval pages (never trained on):

- `scratch`: LineModelCtc / line_crnn from random weights;
- `augment`: the same with the Trainer's augmentation (transform/augmentation.py);
- `warm`: the same network first trained on synthetic EMNIST lines (`--pretrain-epochs`), then
  warm-started on the real lines (the weights whose shapes agree; see trainer/warm_start.py);
- `attention`: LineModelAttention / line_attention.

It reads each run back from ML Metadata (the Evaluator's CER/WER/exact lines, the Trainer's
time and history), times the pushed model reading the eval lines through its serving signature
(seconds per line, 2 cores), prints JSON and Markdown tables (docs/benchmarks.md records them),
and writes a PNG of the first eval lines read by the best run against their truth.
"""

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks.lines_benchmark import DEFAULT_DATA_DIR as EMNIST_DIR
from benchmarks.lines_benchmark import DEFAULT_NLTK_DATA, pipeline_run
from data.features import EVAL_SPLIT
from data.lines import read_line_images
from data.locations import SHARED_DATA
from evaluation.line_grid import save_prediction_grid
from serving.predictors import LinePredictor
from trainer.config import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]
EVAL_PAGES = REPO / "data" / "hooker_eval_pages.txt"
RUNS = ("scratch", "augment", "warm", "attention")
PNG_LINES = 12


def line_config(args, run: str, warm_start: str = "") -> ExperimentConfig:
    attention = run == "attention"
    return ExperimentConfig.from_dict(
        {
            "dataset": "PageXmlLinesDataset",
            "model": "LineModelAttention" if attention else "LineModelCtc",
            "network": "line_attention" if attention else "line_crnn",
            "network_args": {} if attention else crnn_args(args),
            "dataset_args": {
                "max_length": args.max_length,
                "height": args.height,
                "max_width": args.max_width,
                "eval_pages": str(EVAL_PAGES),
                "augment": run == "augment",
            },
            "train_args": {
                "epochs": getattr(args, f"epochs_{run}") or args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
                "warm_start": warm_start,
            },
        }
    )


def crnn_args(args) -> dict:
    return {"conv_filters": args.conv_filters}


def pretrain(args, root: Path) -> str:
    """line_crnn on synthetic EMNIST lines; returns the pushed model's directory."""
    config = ExperimentConfig.from_dict(
        {
            "dataset": "EmnistLinesDataset",
            "model": "LineModelCtc",
            "network": "line_crnn",
            "network_args": crnn_args(args),
            "dataset_args": {"max_length": 34, "num_train": args.pretrain_lines, "num_eval": 200},
            "train_args": {
                "epochs": args.pretrain_epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
            },
        }
    )
    result = pipeline_run(
        config, argparse.Namespace(**{**vars(args), "data_dir": args.emnist_dir}), root
    )
    if not result["pushed_to"]:
        raise SystemExit(f"pretraining on EMNIST lines pushed nothing (CER {result['cer']:.3f})")
    return str(Path(result["pushed_to"]).parent)


def inference_seconds_per_line(model_dir: str, images: list, batch: int = 32) -> tuple:
    """(seconds per line over all eval lines read in batches, predictions)."""
    predictor = LinePredictor(model_dir)
    predictor.predict_batch(images[:2])  # traced once before timing
    started = time.perf_counter()
    predictions = [
        p
        for i in range(0, len(images), batch)
        for p in predictor.predict_batch(images[i : i + batch])
    ]
    return (time.perf_counter() - started) / len(images), predictions


def print_tables(results: dict) -> None:
    print(
        "\n| run | model / network | epochs | train lines | eval lines | CER | WER | exact lines "
        "| Trainer time | s per line (inference) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run, r in results.items():
        print(
            f"| {run} | {r['model']} / {r['network']} | {r['epochs']} | {r['train_lines']} "
            f"| {r['eval_lines']} | {r['cer']:.4f} | {r['wer']:.4f} | {r['exact_line_accuracy']:.4f} "
            f"| {r['trainer_fit_seconds']:.0f} s | {r['seconds_per_line']:.4f} |"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("PAGEXML_DIR", str(SHARED_DATA / "htr" / "hooker"))
    )
    parser.add_argument("--emnist-dir", default=EMNIST_DIR, help="EMNIST files for the warm start")
    parser.add_argument("--root", default="artifacts/handwriting_benchmark")
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every run ...")
    for run in RUNS:
        parser.add_argument(f"--epochs-{run}", type=int, help=f"... except the {run} run")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--pretrain-lines", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--max-width", type=int, default=640)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--conv-filters", type=int, default=16, help="line_crnn's conv_filters")
    parser.add_argument("--max-cer", type=float, default=1.0, help="blessing: CER upper bound")
    parser.add_argument(
        "--max-cer-increase",
        type=float,
        default=1.0,
        help="blessing: CER increase allowed over the root's last blessed model",
    )
    parser.add_argument("--png", default="artifacts/handwriting_predictions.png")
    args = parser.parse_args(argv)
    if not Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist (set PAGEXML_DIR)")
    if "NLTK_DATA" not in os.environ and DEFAULT_NLTK_DATA.is_dir():
        os.environ["NLTK_DATA"] = str(DEFAULT_NLTK_DATA)

    results, predictions = {}, {}
    for run in args.runs:
        warm = pretrain(args, Path(args.root) / "pretrain") if run == "warm" else ""
        result = pipeline_run(line_config(args, run, warm), args, Path(args.root) / run)
        images, truths = read_line_images(result["examples_dir"], EVAL_SPLIT)
        result["seconds_per_line"], predictions[run] = inference_seconds_per_line(
            result["pushed_to"], images
        )
        results[run] = result
    print(json.dumps(results, indent=2))
    print_tables(results)
    best = min(results, key=lambda run: results[run]["cer"])
    title = (
        f"Hooker eval pages, {best} run ({results[best]['network']}): CER "
        f"{results[best]['cer']:.3f} over {results[best]['eval_lines']} lines; first {PNG_LINES} shown"
    )
    save_prediction_grid(
        images[:PNG_LINES], truths[:PNG_LINES], predictions[best][:PNG_LINES], Path(args.png), title
    )
    print(f"\n{args.png}: the {best} run's reading of the first eval lines")


if __name__ == "__main__":
    main()
