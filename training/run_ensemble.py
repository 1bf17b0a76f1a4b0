"""Builds, evaluates and (with --save) pushes an ensemble of two line models.

    python -m training.run_ensemble MODEL_A MODEL_B --examples-dir DIR [--save]

MODEL_A and MODEL_B: a pushed model's directory (its newest version), a version directory or a
Trainer's Model artifact. DIR: the eval examples the members were evaluated on, an Examples
artifact with a `Split-eval` folder (a line pipeline's Transform `transformed_examples/<id>`).
The ensemble (trainer/ensemble.py) is evaluated with the dataset's line EvalConfig and gated as
any line model (`--max-cer`, `--max-cer-increase` over the latest blessed model); `--save`
pushes it, if blessed, to `<root>/serving/lines/` (or `--serving-dir`). Prints each member's CER
and the ensemble's. The run is recorded like an experiment (`python -m training.runs show RUN`).
"""

import argparse
import json
import os
import sys
from pathlib import Path

from common.quiet import quiet
from trainer.datasets import DATASETS
from trainer.datasets.base import add_threshold_flags, thresholds_given
from trainer.models.base import LINES

LINE_DATASETS = sorted(name for name, d in DATASETS.items() if d.provides == LINES)
PIPELINE_NAME = "text-recognizer-ensemble"
REPORTED = ("cer", "wer", "exact_line_accuracy")


class UsageError(ValueError):
    """A bad argument, named in the message."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_a", help="first line model")
    parser.add_argument("model_b", help="second line model")
    parser.add_argument(
        "--examples-dir", required=True, help="Examples artifact with Split-eval (eval examples)"
    )
    parser.add_argument(
        "--dataset",
        default="EmnistLinesDataset",
        choices=LINE_DATASETS,
        help="whose EvalConfig and thresholds evaluate the models (default EmnistLinesDataset)",
    )
    parser.add_argument(
        "--combination",
        default="auto",
        choices=["auto", "average", "pick"],
        help="auto (default): average aligned CTC posteriors, else pick by confidence per line",
    )
    parser.add_argument("--save", action="store_true", help="push the ensemble if it is blessed")
    parser.add_argument("--root", default="artifacts", help="pipeline outputs and metadata")
    parser.add_argument("--serving-dir", help="push destination (default <root>/serving/<model>)")
    add_threshold_flags(parser, [DATASETS[name] for name in LINE_DATASETS])
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow, TFX, Beam and Python warnings"
    )
    parser.add_argument(
        "--beam-arg", action="append", help="Beam pipeline argument (default --runner=FnApiRunner)"
    )
    return parser.parse_args(argv)


def check_examples(examples_dir: str) -> None:
    if not os.path.isdir(os.path.join(examples_dir, "Split-eval")):
        raise UsageError(
            f"--examples-dir {examples_dir}: no Split-eval folder (give an Examples artifact, "
            "e.g. <root>/pipelines/text-recognizer-lines/Transform/transformed_examples/<id>)"
        )


def run(args: argparse.Namespace) -> dict:
    """Runs the ensemble pipeline; returns {"run_id", "nodes"} (see training.outputs)."""
    from pipeline.ensemble_pipeline import create_ensemble_pipeline
    from training.outputs import latest_run
    from training.run_experiment import DEFAULT_BEAM_ARGS, run_recorded

    dataset = DATASETS[args.dataset]
    root = Path(args.root).resolve()
    metadata_path = str(root / "metadata.sqlite")
    serving_dir = args.serving_dir or str(root / "serving" / dataset.model_name)
    thresholds = dataset.blessing_thresholds(thresholds_given(args, [dataset]))
    pipeline = create_ensemble_pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(root / "pipelines" / PIPELINE_NAME),
        models=(os.path.abspath(args.model_a), os.path.abspath(args.model_b)),
        examples_dir=os.path.abspath(args.examples_dir),
        eval_config=dataset.eval_config(thresholds),
        serving_model_dir=serving_dir if args.save else None,
        metadata_path=metadata_path,
        beam_pipeline_args=args.beam_arg or DEFAULT_BEAM_ARGS,
        combination=args.combination,
    )
    described = {"model": "Ensemble", "dataset": args.dataset, "combination": args.combination}
    described["members"] = [args.model_a, args.model_b]
    experiment = {"experiment": json.dumps(described), "pipeline": PIPELINE_NAME}
    run_id = run_recorded(pipeline, metadata_path, experiment)
    return {"run_id": run_id, "nodes": latest_run(metadata_path, run_id)}


def overall_metrics(node) -> dict:
    """{metric: value} of the overall slice of an Evaluator's output."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(node.outputs["evaluation"][0].uri)
    overall = dict(result.slicing_metrics)[()][""][""]
    return {name: next(iter(value.values())) for name, value in overall.items()}


def summarize(result: dict) -> list:
    """Each member's figures, the ensemble's, its blessing and where it was pushed."""
    from components.ensemble import COMBINATION, COMBINATION_REASON, SOURCE
    from pipeline.ensemble_pipeline import EVALUATOR, MEMBERS, member_evaluator
    from training.outputs import custom_property

    nodes, run_id = result["nodes"], result["run_id"]
    lines = [f"Run: {run_id} (python -m training.runs show {run_id})"]

    def figures(node_id: str) -> str:
        metrics = overall_metrics(nodes[node_id])
        return ", ".join(f"{name} {metrics[name]:.4f}" for name in REPORTED if name in metrics)

    for member in MEMBERS:
        source = custom_property(nodes[member].outputs["model"][0], SOURCE)
        lines.append(f"{member} ({source}): {figures(member_evaluator(member))}")
    ensemble = nodes["Ensemble"].outputs["model"][0]
    blessed = custom_property(nodes[EVALUATOR].outputs["blessing"][0], "blessed")
    lines.append(
        f"ensemble ({custom_property(ensemble, COMBINATION)}: "
        f"{custom_property(ensemble, COMBINATION_REASON)}): {figures(EVALUATOR)}; "
        f"{'BLESSED' if blessed else 'NOT blessed'}"
    )
    if "Pusher" not in nodes:
        lines.append("Not pushed (run with --save to push a blessed ensemble)")
    elif custom_property(nodes["Pusher"].outputs["pushed_model"][0], "pushed"):
        pushed = nodes["Pusher"].outputs["pushed_model"][0]
        lines.append(f"Pushed the ensemble to {custom_property(pushed, 'pushed_destination')}")
    else:
        lines.append("Not pushed: the ensemble was not blessed")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_examples(args.examples_dir)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    quiet(args.verbose)
    from trainer.ensemble import EnsembleError

    try:
        result = run(args)
    except EnsembleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a component failed: show its own message if it is ours
        from training.run_experiment import root_cause

        cause = root_cause(e)
        if not isinstance(cause, EnsembleError):
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 2
    print("\n".join(summarize(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
