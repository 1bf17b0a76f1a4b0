"""Sweep and group benchmark: a tuned run against the default config, and run_group's 2 workers vs 1.

    python -m benchmarks.sweep_benchmark [--data-dir ../shared/data/emnist] [--trials 12] [--lines]

1. Sweep: the default config (mlp on a subsample of EMNIST characters) through the whole
   pipeline, then the same config with a "tune" block (the Tuner runs `--trials` trials, the
   Trainer trains with the best values), both in one root so the data components are computed
   once. Prints each run's eval accuracy (TFMA, eval split), the Tuner's and Trainer's wall time
   and every trial.
   With --lines, the same for LineModelCtc on a few short EMNIST lines (objective val_cer; the
   eval CER from TFMA); NLTK_DATA=../shared/data/nltk_data gives it the Brown corpus.
2. Groups: the same small experiments file (4 tiny mlp configs, 1 epoch, embedded sample) run by
   `training.run_group` with 1 worker, then with 2, each in a fresh root so nothing is cached
   between the two timings; prints the wall time of each and the ratio.

Prints JSON, then Markdown tables (docs/benchmarks.md records them).
"""

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from trainer.config import ExperimentConfig
from training import run_experiment

DEFAULT_DATA_DIR = os.environ.get(
    "EMNIST_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "emnist")
)

SPACE = {
    "train_args.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
    "network_args.layer_size": [64, 128, 256, 512],
    "network_args.num_layers": {"min": 1, "max": 4},
    "network_args.dropout": {"min": 0.0, "max": 0.5},
}
SAMPLE_DATA = "data/sample/emnist"


def pipeline_run(
    config: dict, data_dir: str, root: Path, metric: str = "sparse_categorical_accuracy"
) -> dict:
    import tensorflow_model_analysis as tfma

    args = run_experiment.parse_args(
        [json.dumps(config), "--data-dir", data_dir, "--root", str(root)]
    )
    started = time.perf_counter()
    result = run_experiment.run(args)
    wall = time.perf_counter() - started
    nodes = result["nodes"]
    evaluation = tfma.load_eval_result(nodes["Evaluator"].outputs["evaluation"][0].uri)
    overall = dict(evaluation.slicing_metrics)[()][""][""]
    figures = {
        "run": result["run_id"],
        "wall_seconds": wall,
        "component_seconds": {n.node: n.seconds for n in nodes.values()},
        "component_states": {n.node: n.state.lower() for n in nodes.values()},
        metric: overall[metric]["doubleValue"],
        "eval_examples": int(overall["example_count"]["doubleValue"]),
    }
    if "Tuner" in nodes:
        results_dir = Path(nodes["Tuner"].outputs["tuner_results"][0].uri)
        figures["trials"] = json.loads((results_dir / "trials.json").read_text())
        best_dir = Path(nodes["Tuner"].outputs["best_hyperparameters"][0].uri)
        best = json.loads((best_dir / "best_hyperparameters.txt").read_text())
        figures["best_hyperparameters"] = {
            k: v for k, v in best["values"].items() if not k.startswith("tuner/")
        }
    return figures


def sweep(args) -> dict:
    root = Path(args.root) / "sweep"
    shutil.rmtree(root, ignore_errors=True)
    config = {
        "network": "mlp",
        "dataset_args": {"subsample_fraction": args.subsample_fraction},
        "train_args": {"epochs": args.epochs},
    }
    tuned = {
        **config,
        "tune": {
            "algorithm": args.algorithm,
            "max_trials": args.trials,
            "objective": "val_accuracy",
            "space": SPACE,
        },
    }
    ExperimentConfig.from_dict(tuned)  # a bad space fails before anything runs
    default = pipeline_run(config, args.data_dir, root)
    best = pipeline_run(tuned, args.data_dir, root)
    return {"config": config, "tune": tuned["tune"], "default": default, "tuned": best}


LINES_SPACE = {
    "train_args.learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
    "network_args.lstm_dim": [64, 128, 256],
}


def lines_sweep(args) -> dict:
    """The same comparison for LineModelCtc on a few short EMNIST lines (objective val_cer)."""
    root = Path(args.root) / "lines"
    shutil.rmtree(root, ignore_errors=True)
    config = {
        "model": "LineModelCtc",
        "dataset_args": {
            "num_train": args.lines_train,
            "num_eval": args.lines_eval,
            "max_length": args.lines_max_length,
        },
        "train_args": {"epochs": args.lines_epochs, "batch_size": 32},
    }
    tuned = {
        **config,
        "tune": {
            "algorithm": args.algorithm,
            "max_trials": args.lines_trials,
            "objective": "val_cer",
            "space": LINES_SPACE,
        },
    }
    ExperimentConfig.from_dict(tuned)
    default = pipeline_run(config, args.data_dir, root, metric="cer")
    best = pipeline_run(tuned, args.data_dir, root, metric="cer")
    return {"config": config, "tune": tuned["tune"], "default": default, "tuned": best}


GROUP = {
    "experiment_group": "sweep-benchmark",
    "experiments": [
        {
            "network": "mlp",
            "network_args": {"num_layers": n, "layer_size": 64},
            "train_args": {"epochs": 1},
        }
        for n in (1, 2, 3, 4)
    ],
}


def groups(args) -> dict:
    from training.run_group import run_group

    folder = Path(args.root) / "group"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    experiments = folder / "experiments.json"
    experiments.write_text(json.dumps(GROUP, indent=1))
    figures: dict = {}
    for workers in (1, 2):
        root = folder / f"workers{workers}"
        started = time.perf_counter()
        results = run_group(
            str(experiments), workers, str(root), ["--data-dir", args.group_data_dir]
        )
        figures[workers] = {
            "wall_seconds": time.perf_counter() - started,
            "finished": sum(r["returncode"] == 0 for r in results),
            "runs": len(results),
            "errors": [r["error"] for r in results if r["returncode"]],
        }
    figures["ratio"] = figures[1]["wall_seconds"] / figures[2]["wall_seconds"]
    return figures


def _values(values: dict) -> str:
    return ", ".join(
        f"{k.split('.', 1)[1]} {v:.3g}" if isinstance(v, float) else f"{k.split('.', 1)[1]} {v}"
        for k, v in sorted(values.items())
    )


def print_sweep(
    result: dict, label: str, metric: str, objective: str, higher_is_better: bool
) -> None:
    """The default and tuned runs, the best values, then every trial best first."""
    print(f"| run | eval examples | {label} | Tuner | Trainer | whole run |")
    print("|---|---|---|---|---|---|")
    for name, r in (
        ("default config", result["default"]),
        ("tuned (best values)", result["tuned"]),
    ):
        seconds = r["component_seconds"]
        tuner = f"{seconds['Tuner']:.1f} s" if "Tuner" in seconds else "-"
        print(
            f"| {name} | {r['eval_examples']} | {r[metric]:.4f} | {tuner} "
            f"| {seconds['Trainer']:.1f} s | {r['wall_seconds']:.1f} s |"
        )
    print(f"\nBest values: {_values(result['tuned']['best_hyperparameters'])}\n")
    print(f"| trial | {objective} | time | values |")
    print("|---|---|---|---|")
    scored = [t for t in result["tuned"]["trials"] if t["objective"] is not None]
    unscored = [t for t in result["tuned"]["trials"] if t["objective"] is None]
    for trial in sorted(scored, key=lambda t: t["objective"], reverse=higher_is_better) + unscored:
        value = "n/a" if trial["objective"] is None else f"{trial['objective']:.4f}"
        print(
            f"| {trial['trial_id']} | {value} | {trial['seconds']:.1f} s "
            f"| {_values(trial['hyperparameters'])} |"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="EMNIST files for the sweep")
    parser.add_argument("--group-data-dir", default=SAMPLE_DATA, help="EMNIST for the group runs")
    parser.add_argument("--root", default="artifacts/sweep_benchmark")
    parser.add_argument("--subsample-fraction", type=float, default=0.1)
    parser.add_argument(
        "--epochs", type=int, default=2, help="per trial and for the final training"
    )
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--algorithm", default="random", choices=["random", "bayesian"])
    parser.add_argument(
        "--lines", action="store_true", help="also sweep LineModelCtc on EMNIST lines"
    )
    parser.add_argument("--lines-trials", type=int, default=3)
    parser.add_argument("--lines-epochs", type=int, default=3)
    parser.add_argument("--lines-train", type=int, default=1000)
    parser.add_argument("--lines-eval", type=int, default=200)
    parser.add_argument("--lines-max-length", type=int, default=16)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-groups", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_sweep and not Path(args.data_dir).exists():
        parser.error(f"--data-dir {args.data_dir} does not exist (set EMNIST_DIR)")

    started = time.perf_counter()
    results: dict = {}
    if not args.skip_sweep:
        results["sweep"] = sweep(args)
    if args.lines:
        results["lines_sweep"] = lines_sweep(args)
    if not args.skip_groups:
        results["groups"] = groups(args)
    results["benchmark_seconds"] = time.perf_counter() - started
    print(json.dumps(results, indent=2, default=str))

    if "sweep" in results:
        print(
            f"\nSweep: mlp, EMNIST ByClass subsample {args.subsample_fraction}, {args.epochs} epochs, "
            f"{args.algorithm}, {args.trials} trials, objective val_accuracy\n"
        )
        print_sweep(
            results["sweep"], "eval accuracy", "sparse_categorical_accuracy", "val_accuracy", True
        )
    if "lines_sweep" in results:
        print(
            f"\nLines sweep: LineModelCtc, {args.lines_train} train / {args.lines_eval} eval lines of at most "
            f"{args.lines_max_length} characters, {args.lines_epochs} epochs, batch 32, {args.algorithm}, "
            f"{args.lines_trials} trials, objective val_cer\n"
        )
        print_sweep(results["lines_sweep"], "eval CER", "cer", "val_cer", False)
    if "groups" in results:
        g = results["groups"]
        print(
            f"\nGroup: {len(GROUP['experiments'])} experiments (mlp, 1 epoch), data {args.group_data_dir}\n"
        )
        print("| workers | finished | wall time |")
        print("|---|---|---|")
        for workers in (1, 2):
            print(
                f"| {workers} | {g[workers]['finished']}/{g[workers]['runs']} | {g[workers]['wall_seconds']:.1f} s |"
            )
        print(f"\n1 worker / 2 workers: {g['ratio']:.2f}x")
    print(f"\nBenchmark wall time: {results['benchmark_seconds']:.0f} s")


if __name__ == "__main__":
    main()
