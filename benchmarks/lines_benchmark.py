"""EMNIST lines benchmark: CER, WER, exact-line accuracy, CER by line length, wall times.

    python -m benchmarks.lines_benchmark [--data-dir ../shared/data/emnist] [--num-train 5000]
        [--num-eval 500] [--epochs 8] [--epochs-ctc 12] [--models LineModelCtc ...]

For each line model (LineModel/line_cnn_all_conv, LineModelCtc/line_lstm_ctc,
LineModelAttention/line_attention) it runs the whole lines pipeline (BeamDagRunner) on the
official-format EMNIST files, in its own root `<root>/<network>`, with lines of at most 34
characters and glyph overlap in [0, 0.33]; sentences come from the Brown corpus when NLTK finds
it (NLTK_DATA, default ../shared/data/nltk_data next to the repository) and otherwise from the
shipped sample. It reads the run back from ML Metadata: the Evaluator's overall and per-length
figures, the Trainer's training_metrics.json and each component's wall time, and prints them as
JSON and Markdown tables (docs/benchmarks.md records them). The blessing bounds default to a CER
of 1.0 and an increase of 1.0 over a previous blessed model, so every model that reads anything
is pushed and can be looked at with scripts/render_predictions.py --root <root>/<network>.
"""

import argparse
import json
import os
import time
from pathlib import Path

import tensorflow_model_analysis as tfma

from data.features import LENGTH_KEY
from evaluation.tfma_metrics import CER_NAME, EXACT_LINE_ACCURACY_NAME, WER_NAME
from trainer import METRICS_FILE
from trainer.config import ExperimentConfig
from training import run_experiment
from training.outputs import custom_property

_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA_DIR = os.environ.get("EMNIST_DIR", str(_SHARED_DATA / "emnist"))
DEFAULT_NLTK_DATA = _SHARED_DATA / "nltk_data"

# Model -> (network, short name for its --epochs-<short> override).
MODELS = {
    "LineModel": ("line_cnn_all_conv", "cnn"),
    "LineModelCtc": ("line_lstm_ctc", "ctc"),
    "LineModelAttention": ("line_attention", "attention"),
}
MAX_LENGTH = 34
MIN_OVERLAP = 0.0
MAX_OVERLAP = 0.33
LENGTH_BUCKETS = ((1, 10), (11, 20), (21, MAX_LENGTH))
EXAMPLE_COUNT = "example_count"


def _value(metrics: dict, name: str) -> float:
    return metrics[name]["doubleValue"]


def length_figures(slicing_metrics: dict) -> dict:
    """{line length: {"lines": n, "cer": CER}} from the Evaluator's length slices."""
    figures = {}
    for key, outputs in slicing_metrics.items():
        if len(key) == 1 and key[0][0] == LENGTH_KEY:
            metrics = outputs[""][""]
            figures[int(key[0][1])] = {
                "lines": int(_value(metrics, EXAMPLE_COUNT)),
                "cer": _value(metrics, CER_NAME),
            }
    return dict(sorted(figures.items()))


def bucket_cer(by_length: dict, buckets=LENGTH_BUCKETS) -> dict:
    """{"a-b": {"lines": n, "cer": pooled CER}} over line-length buckets.

    Every line of the length-n slice has n reference characters, so weighting each slice's CER by
    its example count times n gives the bucket's pooled CER (total edits / total characters), the
    same definition as the overall figure (evaluation.text_metrics). None for an empty bucket.
    """
    result = {}
    for low, high in buckets:
        slices = [(n, f) for n, f in by_length.items() if low <= n <= high]
        characters = sum(n * f["lines"] for n, f in slices)
        edits = sum(n * f["lines"] * f["cer"] for n, f in slices)
        result[f"{low}-{high}"] = {
            "lines": sum(f["lines"] for _, f in slices),
            "cer": edits / characters if characters else None,
        }
    return result


def pipeline_run(config: ExperimentConfig, args, root: Path) -> dict:
    argv = [
        config.to_json(),
        "--save",
        "--data-dir",
        args.data_dir,
        "--root",
        str(root),
        "--max-cer",
        str(args.max_cer),
        "--max-cer-increase",
        str(args.max_cer_increase),
    ]
    started = time.perf_counter()
    result = run_experiment.run(run_experiment.parse_args(argv))
    wall = time.perf_counter() - started
    nodes = result["nodes"]
    evaluator = nodes["Evaluator"]
    slicing_metrics = dict(
        tfma.load_eval_result(evaluator.outputs["evaluation"][0].uri).slicing_metrics
    )
    overall = slicing_metrics[()][""][""]
    model_run = Path(nodes["Trainer"].outputs["model_run"][0].uri)
    training = json.loads((model_run / METRICS_FILE).read_text())
    pushed = nodes["Pusher"].outputs["pushed_model"][0] if "Pusher" in nodes else None
    by_length = length_figures(slicing_metrics)
    return {
        "model": config.model,
        "network": config.network,
        "epochs": config.train_args["epochs"],
        "batch_size": config.train_args["batch_size"],
        "root": str(root),
        "examples_dir": str(result["examples_dir"]),
        "wall_seconds": wall,
        "component_seconds": {n.node: n.seconds for n in nodes.values()},
        "component_states": {n.node: n.state for n in nodes.values()},
        "cer": _value(overall, CER_NAME),
        "wer": _value(overall, WER_NAME),
        "exact_line_accuracy": _value(overall, EXACT_LINE_ACCURACY_NAME),
        "eval_lines": int(_value(overall, EXAMPLE_COUNT)),
        "train_lines": training["train_examples_per_epoch"],
        "trainer_fit_seconds": training["fit_seconds"],
        "examples_per_second": training["examples_per_second"],
        "history": training["history"],
        "cer_by_length": by_length,
        "cer_by_length_bucket": bucket_cer(by_length),
        "blessed": bool(custom_property(evaluator.outputs["blessing"][0], "blessed")),
        "pushed_to": (
            custom_property(pushed, "pushed_destination")
            if pushed is not None and custom_property(pushed, "pushed")
            else None
        ),
    }


def _fmt(value, spec=".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_tables(results: dict, args) -> None:
    print(
        f"\nEMNIST lines (max_length {MAX_LENGTH}, overlap [{MIN_OVERLAP}, {MAX_OVERLAP}]), "
        f"batch {args.batch_size}; eval lines use EMNIST's test glyphs\n"
    )
    print(
        "| model | network | epochs | train lines | eval lines | CER | WER | exact-line acc "
        "| char acc (1 - CER) | train time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results.values():
        print(
            f"| {r['model']} | {r['network']} | {r['epochs']} | {r['train_lines']} | {r['eval_lines']} "
            f"| {r['cer']:.4f} | {r['wer']:.4f} | {r['exact_line_accuracy']:.4f} | {1 - r['cer']:.4f} "
            f"| {r['trainer_fit_seconds']:.0f} s |"
        )
    buckets = [f"{low}-{high}" for low, high in LENGTH_BUCKETS]
    print(
        "\nCER by line length (characters; pooled over the lines of each bucket; lines in brackets)\n"
    )
    print("| model | " + " | ".join(buckets) + " |")
    print("|---|" + "---|" * len(buckets))
    for r in results.values():
        cells = [r["cer_by_length_bucket"][b] for b in buckets]
        print(
            f"| {r['model']} | "
            + " | ".join(f"{_fmt(c['cer'])} ({c['lines']})" for c in cells)
            + " |"
        )
    components = list(dict.fromkeys(c for r in results.values() for c in r["component_seconds"]))
    print("\n| component | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for component in components + ["whole run"]:
        cells = [
            f"{r['wall_seconds']:.1f} s"
            if component == "whole run"
            else _component_cell(r, component)
            for r in results.values()
        ]
        print(f"| {component} | " + " | ".join(cells) + " |")


def _component_cell(result: dict, component: str) -> str:
    """A component's wall time, marked when it was taken from the pipeline cache."""
    if component not in result["component_seconds"]:
        return "n/a"
    cached = " (cached)" if result["component_states"][component] == "CACHED" else ""
    return f"{result['component_seconds'][component]:.1f} s{cached}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--root", default="artifacts/lines_benchmark")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--num-train", type=int, default=5000, help="training lines")
    parser.add_argument("--num-eval", type=int, default=500, help="eval lines")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every model ...")
    for model, (network, short) in MODELS.items():
        parser.add_argument(f"--epochs-{short}", type=int, help=f"... except {model} ({network})")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-cer", type=float, default=1.0, help="blessing: CER upper bound")
    parser.add_argument(
        "--max-cer-increase",
        type=float,
        default=1.0,
        help="blessing: CER increase allowed over the root's last blessed model",
    )
    args = parser.parse_args(argv)
    if not Path(args.data_dir).exists():
        parser.error(f"--data-dir {args.data_dir} does not exist (set EMNIST_DIR)")
    if "NLTK_DATA" not in os.environ and DEFAULT_NLTK_DATA.is_dir():
        os.environ["NLTK_DATA"] = str(DEFAULT_NLTK_DATA)

    results = {}
    for model in args.models:
        network, short = MODELS[model]
        epochs = getattr(args, f"epochs_{short}")
        epochs = args.epochs if epochs is None else epochs
        config = ExperimentConfig.from_dict(
            {
                "dataset": "EmnistLinesDataset",
                "model": model,
                "network": network,
                "dataset_args": {
                    "max_length": MAX_LENGTH,
                    "min_overlap": MIN_OVERLAP,
                    "max_overlap": MAX_OVERLAP,
                    "num_train": args.num_train,
                    "num_eval": args.num_eval,
                },
                "train_args": {
                    "epochs": epochs,
                    "batch_size": args.batch_size,
                    "learning_rate": args.learning_rate,
                },
            }
        )
        results[model] = pipeline_run(config, args, Path(args.root) / network)

    print(json.dumps(results, indent=2))
    print_tables(results, args)


if __name__ == "__main__":
    main()
