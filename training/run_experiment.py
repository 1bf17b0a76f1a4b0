"""Runs an experiment: the character or line pipeline on the local machine with BeamDagRunner.

    python -m training.run_experiment '{"network": "lenet", "train_args": {"epochs": 2}}' --save
    python -m training.run_experiment '{"dataset": "EmnistLinesDataset", "model": "LineModelCtc"}'

The config is validated before any component runs. `--save` adds the Pusher: the model is pushed
to `<root>/serving/<model name>/<version>/` only if the Evaluator blessed it. Artifacts and the
ML Metadata store live under `--root`, so a rerun reuses cached results. Runs may share a root
and run at the same time (`training.run_group`): each names its own pipeline_run context
(see training.outputs) and reads its own results from it.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from common.quiet import quiet
from data.errors import DatasetError
from trainer.config import ConfigError, ExperimentConfig
from trainer.datasets import DATASETS
from trainer.datasets.base import add_threshold_flags, thresholds_given
from trainer.models.base import LINES, PAGES

# TensorFlow, TFX and Beam are imported only once a valid config is about to run, so `--help` and
# config errors answer in about a second instead of after a minute of imports.
DEFAULT_BEAM_ARGS = ["--runner=FnApiRunner"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment_config", help="FSDL-style JSON experiment config")
    parser.add_argument("--save", action="store_true", help="push the model if it is blessed")
    parser.add_argument(
        "--data-dir",
        help="official EMNIST files (directory or gzip.zip); default: the embedded sample",
    )
    parser.add_argument("--root", default="artifacts", help="pipeline outputs, metadata, serving")
    parser.add_argument(
        "--hyperparameters",
        metavar="RUN",
        help="train with the best hyperparameters a tuned run found (no tuning)",
    )
    add_threshold_flags(parser, DATASETS.values())
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow, TFX, Beam and Python warnings"
    )
    parser.add_argument(
        "--beam-arg", action="append", help=f"Beam pipeline argument (default {DEFAULT_BEAM_ARGS})"
    )
    parser.add_argument(
        "--beam-profile",
        default="local",
        help="named Beam options (pipeline/beam_profiles.py): "
        "local, local-mp, dataflow, flink, spark; --beam-arg adds to or overrides them",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Runs the pipeline; returns the latest run's records (see training.outputs)."""
    config = ExperimentConfig.from_json(args.experiment_config)
    from components.glyph_banks import run_bank_paths
    from pipeline.beam_profiles import beam_args
    from pipeline.pipeline import create_pipeline
    from pipeline.tasks import task_for
    from training.outputs import latest_run

    dataset = DATASETS[config.dataset]
    root = Path(args.root).resolve()
    metadata_path = str(root / "metadata.sqlite")
    hyperparameters = _best_hyperparameters(metadata_path, args.hyperparameters)
    examples_dir, resources = dataset.prepare(config, args.data_dir, str(root))
    task = task_for(
        dataclasses.replace(config, experiment_group=""),  # not the Trainer's: keeps its cache
        resources,
        **thresholds_given(args, DATASETS.values()),
    )
    pipeline_name = f"text-recognizer-{dataset.model_name}"
    pipeline = create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=str(root / "pipelines" / pipeline_name),
        examples_dir=str(examples_dir),
        task=task,
        serving_model_dir=str(root / "serving" / dataset.model_name) if args.save else None,
        metadata_path=metadata_path,
        beam_pipeline_args=beam_args(args.beam_profile, args.beam_arg or []),
        hyperparameters=hyperparameters,
    )
    run_id = run_recorded(
        pipeline,
        metadata_path,
        {
            "experiment": config.to_json(),
            "experiment_group": config.experiment_group,
            "pipeline": pipeline_name,
        },
    )
    nodes = latest_run(metadata_path, run_id)
    return {
        "config": config,
        "examples_dir": examples_dir,
        "resources": {**resources, **run_bank_paths(nodes)},  # the banks the run built
        "run_id": run_id,
        "nodes": nodes,
    }


def run_recorded(pipeline, metadata_path: str, described: dict) -> str:
    """Runs `pipeline` with BeamDagRunner under a new run id, recording `described` with the run's
    status, times and root error in the metadata store (see training.runs); returns the run id."""
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    from training.outputs import new_run_id, record_run

    run_id = new_run_id()
    record_run(metadata_path, run_id, {**described, "started": time.time(), "status": "running"})
    outcome = {"status": "failed"}
    try:
        run_pipeline(BeamDagRunner(), pipeline, run_id)
        outcome["status"] = "complete"
    except Exception as e:
        outcome["error"] = str(root_cause(e))[:2000]
        raise
    finally:
        record_run(metadata_path, run_id, {**outcome, "finished": time.time()})
    return run_id


def run_pipeline(runner, pipeline, run_id: str) -> None:
    """`runner.run(pipeline)`, under our run id instead of one the runner makes up (it substitutes
    only parameters still unset)."""
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration.portable import runtime_parameter_utils

    ir = compiler.Compiler().compile(pipeline)
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id}
    )
    runner.run_with_ir(ir)


def _best_hyperparameters(metadata_path: str, run: str):
    """The best_hyperparameters artifact of tuned run `run` (id, name or prefix), or None."""
    if not run:
        return None
    from training.runs import find_run, load_runs

    try:
        found = find_run(load_runs(metadata_path), run)
    except LookupError as e:
        raise ConfigError(f"--hyperparameters: {e}") from None
    if found.hyperparameters is None:
        raise ConfigError(f"--hyperparameters: run {found.name} has no Tuner output")
    return found.hyperparameters


def summarize(result: dict) -> list:
    """Human-readable lines: what ran, accuracy, blessing, where the model went, a prediction."""
    import tensorflow_model_analysis as tfma

    from serving.predictors import CharacterPredictor, LinePredictor
    from training.outputs import custom_property

    nodes = result["nodes"]
    run_id = result.get("run_id")  # absent when summarizing nodes read back by other means
    lines = [f"Run: {run_id} (python -m training.runs show {run_id})"] if run_id else []
    lines.append(
        "Components: "
        + ", ".join(f"{n.node} {n.state.lower()} {n.seconds:.1f}s" for n in nodes.values())
    )
    evaluation = nodes["Evaluator"].outputs["evaluation"][0].uri
    overall = dict(tfma.load_eval_result(evaluation).slicing_metrics)[()][""][""]
    figures = ", ".join(f"{name} {value['doubleValue']:.4g}" for name, value in overall.items())
    blessed = custom_property(nodes["Evaluator"].outputs["blessing"][0], "blessed")
    lines.append(f"Eval: {figures}; {'BLESSED' if blessed else 'NOT blessed'}")
    if "Pusher" not in nodes:
        lines.append("Not pushed (run with --save to push a blessed model)")
        return lines
    pushed = nodes["Pusher"].outputs["pushed_model"][0]
    if not custom_property(pushed, "pushed"):
        lines.append("Not pushed: the model was not blessed")
        return lines
    destination = custom_property(pushed, "pushed_destination")
    lines.append(f"Pushed blessed model to {destination}")
    image, truth = _first_eval_example(result)
    if DATASETS[result["config"].dataset].provides == PAGES:
        lines.append(_detected_lines(destination, image, truth))
        return lines
    lines_model = DATASETS[result["config"].dataset].provides == LINES
    predictor = (LinePredictor if lines_model else CharacterPredictor)(destination)
    prediction, confidence = predictor.predict(image)
    lines.append(
        f"Prediction on eval example 0 (true {truth!r}): "
        f"{prediction!r} with confidence {confidence:.3f}"
    )
    return lines


def _detected_lines(destination: str, page, text: str) -> str:
    """How many lines the pushed detector finds on a page (uint8 gray), against its transcription
    (lines joined by newlines)."""
    import io

    from PIL import Image

    from serving.page_regions import find_lines
    from serving.paragraph import SavedModelDetector

    png = io.BytesIO()
    Image.fromarray(page).save(png, format="PNG")
    (probabilities,) = SavedModelDetector(destination).predict([png.getvalue()])
    found = find_lines(probabilities, (page.shape[1], page.shape[0]))
    return (
        f"Lines found on eval page 0: {len(found)} (its transcription has {len(text.splitlines())})"
    )


def _first_eval_example(result: dict) -> tuple:
    """(image as a uint8 array, its text) of the first eval example, drawn if it is a line."""
    config = result["config"]
    return DATASETS[config.dataset].eval_example(
        config, result["examples_dir"], result["resources"]
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # fail fast: before TensorFlow and TFX load
        ExperimentConfig.from_json(args.experiment_config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    quiet(args.verbose)
    try:
        result = run(args)
    except (ConfigError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a component failed: show its own message, not Beam's wrapping
        from components.anomalies_gate import DataAnomaliesError

        cause = root_cause(e)
        if not isinstance(cause, DataAnomaliesError):
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 1
    print("\n".join(summarize(result)))
    return 0


def root_cause(error: BaseException) -> BaseException:
    """The innermost cause of `error`: a component's own exception, not Beam's wrapping."""
    cause: BaseException | None = error
    while cause is not None:
        error, cause = cause, cause.__cause__ or cause.__context__
    return error


if __name__ == "__main__":
    sys.exit(main())
