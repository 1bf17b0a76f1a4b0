"""Tracked runs: every pipeline run of a root, read back from ML Metadata and the files its
components wrote, listed, shown and compared without reading logs.

    python -m training.runs list [--sort best|newest] [--group G] [--root artifacts]
    python -m training.runs show RUN          # RUN: context id, run name, a prefix of it, or latest
    python -m training.runs compare RUN RUN
    python -m training.runs tensorboard [--port 6006] [--no-serve]

Nothing is recorded twice: the config and custom properties are in MLMD (the run context, the
Trainer's execution), per-epoch metrics in the Trainer's training_metrics.json, the TFMA metrics
and the validation result in the Evaluator's output (read with TFMA), the pushed version on the
Pusher's artifact, the trials in the Tuner's output, wall times on the executions.
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from functools import cached_property

from common.quiet import quiet
from training.outputs import RUN_TYPE, custom_property, open_store, run_nodes

# The TFMA metric a model is gated on, by the dataset type: (name, higher is better).
GATING = {
    "characters": ("sparse_categorical_accuracy", True),
    "lines": ("cer", False),
    "pages": ("mean_iou", True),
}


@dataclasses.dataclass
class Run:
    id: int
    name: str
    properties: dict  # the run context's custom properties
    nodes: dict  # component id -> training.outputs.NodeRun

    @property
    def group(self) -> str:
        return self.properties.get("experiment_group", "")

    @property
    def config(self) -> dict:
        if "experiment" in self.properties:
            return json.loads(self.properties["experiment"])
        trainer = self.nodes.get("Trainer")
        if trainer is None or "custom_config" not in trainer.execution.custom_properties:
            return {}
        return json.loads(
            json.loads(custom_property(trainer.execution, "custom_config"))["experiment"]
        )

    @property
    def status(self) -> str:
        if "status" in self.properties:
            return self.properties["status"]
        states = {n.state for n in self.nodes.values()}
        return (
            "failed"
            if "FAILED" in states
            else "complete"
            if states <= {"COMPLETE", "CACHED"}
            else "running"
        )

    @property
    def seconds(self) -> float:
        """Wall time of the whole run (its recorded start and end, else its components' sum)."""
        if "finished" in self.properties:
            return self.properties["finished"] - self.properties["started"]
        return sum(n.seconds for n in self.nodes.values())

    def uri(self, node: str, key: str):
        artifacts = self.nodes[node].outputs.get(key) if node in self.nodes else None
        return artifacts[0].uri if artifacts else None

    def artifact_property(self, node: str, key: str, name: str, default=None):
        artifacts = self.nodes[node].outputs.get(key) if node in self.nodes else None
        return custom_property(artifacts[0], name, default) if artifacts else default

    @cached_property
    def training(self) -> dict:
        """training_metrics.json of the Trainer (config, history, kept epoch), or {}."""
        from trainer import METRICS_FILE

        folder = self.uri("Trainer", "model_run")
        path = os.path.join(folder, METRICS_FILE) if folder else ""
        return json.load(open(path)) if os.path.exists(path) else {}

    @cached_property
    def metrics(self) -> dict:
        """{slice key: {metric: value}} as TFMA computed them; () is the overall slice."""
        folder = self.uri("Evaluator", "evaluation")
        if not folder:
            return {}
        import tensorflow_model_analysis as tfma

        return {
            key: {name: next(iter(value.values())) for name, value in by_output[""][""].items()}
            for key, by_output in tfma.load_eval_result(folder).slicing_metrics
        }

    @cached_property
    def validation(self) -> list:
        """Why the Evaluator did not bless the model: one line per failed threshold."""
        folder = self.uri("Evaluator", "evaluation")
        if not folder:
            return []
        import tensorflow_model_analysis as tfma

        result = tfma.load_validation_result(folder)
        return [
            _failure_text(failure)
            for per_slice in result.metric_validations_per_slice
            for failure in per_slice.failures
        ]

    @property
    def blessed(self):
        return self.artifact_property("Evaluator", "blessing", "blessed")

    @property
    def pushed_version(self) -> str:
        if not self.artifact_property("Pusher", "pushed_model", "pushed", 0):
            return ""
        return os.path.basename(
            self.artifact_property("Pusher", "pushed_model", "pushed_destination")
        )

    def gating(self) -> tuple:
        """(metric name, its overall value or None, higher is better)."""
        from trainer.datasets import DATASETS

        dataset = DATASETS.get(self.config.get("dataset", ""))
        name, higher = GATING[dataset.provides] if dataset else ("", True)
        return name, self.metrics.get((), {}).get(name), higher

    @property
    def hyperparameters(self):
        """The Tuner's best_hyperparameters artifact (for an Importer), or None."""
        artifacts = (
            self.nodes["Tuner"].outputs.get("best_hyperparameters")
            if "Tuner" in self.nodes
            else None
        )
        return artifacts[0] if artifacts else None

    def trials(self) -> list:
        """[{trial_id, hyperparameters, objective, epochs, seconds, status}] of the Tuner."""
        folder = self.uri("Tuner", "tuner_results")
        path = os.path.join(folder, "trials.json") if folder else ""
        return json.load(open(path)) if os.path.exists(path) else []


def _failure_text(failure) -> str:
    """'sparse_categorical_accuracy 0.0758 < lower bound 0.5 (short by 0.4242)', or against the
    baseline 'change in cer +0.03 > upper bound 0.01 (over by 0.02)'."""
    key, value, threshold = (
        failure.metric_key,
        failure.metric_value.double_value.value,
        failure.metric_threshold,
    )
    if key.is_diff:
        change = threshold.change_threshold
        bound = change.absolute.value if change.HasField("absolute") else change.relative.value
        directions = change.DESCRIPTOR.fields_by_name["direction"].enum_type.values_by_name
        higher = change.direction == directions["HIGHER_IS_BETTER"].number
        lower, upper = (bound, None) if higher else (None, bound)
        name = f"change in {key.name}"
    else:
        bounds = threshold.value_threshold
        lower = bounds.lower_bound.value if bounds.HasField("lower_bound") else None
        upper = bounds.upper_bound.value if bounds.HasField("upper_bound") else None
        name = key.name
    if lower is not None and value < lower:
        text = f"< lower bound {lower:.4g} (short by {lower - value:.4g})"
    elif upper is not None and value > upper:
        text = f"> upper bound {upper:.4g} (over by {value - upper:.4g})"
    else:
        text = failure.message or "failed"
    return f"{name} {value:.4g} {text}"


def load_runs(metadata_path: str) -> list:
    """Every run recorded at `metadata_path`, newest first."""
    if not os.path.exists(metadata_path):
        return []
    store = open_store(metadata_path)
    runs = []
    for context in store.get_contexts_by_type(RUN_TYPE):
        properties = {name: custom_property(context, name) for name in context.custom_properties}
        runs.append(Run(context.id, context.name, properties, run_nodes(store, context)))
    return sorted(runs, key=lambda r: r.id, reverse=True)


def find_run(runs: list, text: str) -> Run:
    """The run named by its context id, its name, a unique prefix of its name, or `latest`."""
    if text == "latest" and runs:
        return runs[0]
    found = [r for r in runs if str(r.id) == text or r.name == text] or [
        r for r in runs if r.name.startswith(text)
    ]
    if len(found) != 1:
        names = ", ".join(r.name for r in found[:5])
        raise LookupError(f"run {text!r}: " + (f"ambiguous ({names})" if found else "no such run"))
    return found[0]


def best_first(runs: list) -> list:
    """Gated-metric order within each dataset type; runs without the metric last."""

    def key(run):
        name, value, higher = run.gating()
        return (value is None, name, -value if value is not None and higher else value or 0)

    return sorted(runs, key=key)


def table(rows: list, headers: list) -> str:
    """A plain text table, columns as wide as their widest cell."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _number(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def list_rows(runs: list) -> list:
    rows = []
    for run in runs:
        name, value, _ = run.gating()
        config = run.config
        blessed = {None: "", 1: "yes", 0: "no"}.get(run.blessed, run.blessed)
        rows.append(
            [
                run.id,
                run.name,
                run.group,
                config.get("model", ""),
                config.get("network", ""),
                run.status,
                f"{name} {_number(value)}" if value is not None else "",
                blessed,
                run.pushed_version,
                f"{run.seconds:.0f}s",
            ]
        )
    return rows


LIST_HEADERS = [
    "id",
    "run",
    "group",
    "model",
    "network",
    "status",
    "metric",
    "blessed",
    "pushed",
    "wall",
]


def show(run: Run) -> str:
    lines = [
        f"run {run.name} (id {run.id}) group {run.group or '-'}: {run.status}, {run.seconds:.1f}s"
    ]
    if run.properties.get("error"):
        lines.append(f"error: {run.properties['error']}")
    lines.append("config: " + json.dumps(run.config, sort_keys=True))
    lines += _section(
        "components",
        table(
            [[n.node, n.state.lower(), f"{n.seconds:.1f}s"] for n in run.nodes.values()],
            ["component", "state", "wall"],
        ),
    )
    data = [
        [node, key, run.uri(node, key), run.artifact_property(node, key, "span", "")]
        for node, key in (("ImportExampleGen", "examples"), ("Transform", "transformed_examples"))
        if run.uri(node, key)
    ]
    lines += _section("data", table(data, ["component", "artifact", "uri", "span"]))
    if run.hyperparameters is not None:
        with open(os.path.join(run.hyperparameters.uri, "best_hyperparameters.txt")) as file:
            best = json.load(file)
        chosen = {k: v for k, v in best["values"].items() if not k.startswith("tuner/")}
        lines += _section("best hyperparameters", json.dumps(chosen, sort_keys=True))
        trials = run.trials()
        lines += _section(
            "trials",
            table(
                [
                    [
                        t["trial_id"],
                        t["status"],
                        _number(t["objective"]),
                        t["epochs"],
                        f"{t['seconds']:.1f}s",
                        json.dumps(t["hyperparameters"], sort_keys=True),
                    ]
                    for t in trials
                ],
                ["trial", "status", "objective", "epochs", "time", "hyperparameters"],
            ),
        )
    history = run.training.get("history", {})
    if history:
        names = sorted(history)
        epochs = [
            [i + 1, *(_number(history[n][i]) for n in names)] for i in range(len(history[names[0]]))
        ]
        lines += _section(
            f"epochs (kept epoch {run.training.get('kept_epoch')} by "
            f"{run.training.get('kept_by')})",
            table(epochs, ["epoch", *names]),
        )
    overall = run.metrics.get((), {})
    lines += _section(
        "TFMA metrics (overall)", ", ".join(f"{k} {_number(v)}" for k, v in sorted(overall.items()))
    )
    blessed = {1: "BLESSED", 0: "NOT blessed"}.get(run.blessed, "not evaluated")
    lines += _section("validation", "\n".join([blessed, *run.validation]))
    pushed = run.artifact_property("Pusher", "pushed_model", "pushed_destination", "")
    lines += _section(
        "pushed", f"version {run.pushed_version} at {pushed}" if run.pushed_version else "no"
    )
    return "\n".join(lines)


def _section(title: str, body: str) -> list:
    return ["", f"{title}:", *("  " + line for line in (body or "-").splitlines())]


def compare(a: Run, b: Run) -> str:
    """The two runs side by side: config keys that differ, metrics, gating, components' times."""
    rows = []
    flat_a, flat_b = _flatten(a.config), _flatten(b.config)
    rows += [
        [key, flat_a.get(key, ""), flat_b.get(key, "")]
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key) != flat_b.get(key)
    ]
    for name in sorted(set(a.metrics.get((), {})) | set(b.metrics.get((), {}))):
        rows.append(
            [
                name,
                _number(a.metrics.get((), {}).get(name)),
                _number(b.metrics.get((), {}).get(name)),
            ]
        )
    rows += [
        ["kept epoch", a.training.get("kept_epoch", ""), b.training.get("kept_epoch", "")],
        ["blessed", a.blessed, b.blessed],
        ["pushed", a.pushed_version, b.pushed_version],
        ["wall", f"{a.seconds:.1f}s", f"{b.seconds:.1f}s"],
    ]
    for node in [n for n in a.nodes if n in b.nodes]:
        rows.append(
            [
                f"{node} time",
                f"{a.nodes[node].seconds:.1f}s ({a.nodes[node].state.lower()})",
                f"{b.nodes[node].seconds:.1f}s ({b.nodes[node].state.lower()})",
            ]
        )
    return table(rows, ["", a.name, b.name])


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "space":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = (
                json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            )
    return flat


def tensorboard_logdir(runs: list, folder: str) -> str:
    """A TensorBoard logdir over `runs`: per run, its Trainer's per-epoch scalars and sample
    predictions (links to what the Keras TensorBoard callback and SamplePredictions wrote) and an
    HParams record (the config it trained, its final TFMA metrics); per trial of a tuned run, one HParams record with its objective. Records are
    written once per run or trial, so rebuilding the folder adds only new runs."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams

    def record(path: str, values: dict, metrics: dict) -> None:
        if os.path.exists(path):
            return
        with tf.summary.create_file_writer(path).as_default():
            hparams.hparams(
                {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}
            )
            for name, value in metrics.items():
                if value is not None:
                    tf.summary.scalar(name, value, step=1)

    for run in runs:
        model_run = run.uri("Trainer", "model_run")
        if not model_run:
            continue
        os.makedirs(os.path.join(folder, run.name), exist_ok=True)
        for split in ("train", "validation", "samples"):  # samples: trainer.sample_predictions
            link = os.path.join(folder, run.name, split)
            if os.path.isdir(os.path.join(model_run, split)) and not os.path.lexists(link):
                os.symlink(os.path.join(model_run, split), link)
        values = {"group": run.group, **_flatten(run.training.get("config") or run.config)}
        record(
            os.path.join(folder, run.name, "hparams"),
            values,
            {f"eval/{name}": value for name, value in run.metrics.get((), {}).items()},
        )
        for trial in run.trials():
            record(
                os.path.join(folder, run.name, f"trial_{trial['trial_id']}"),
                {**values, **trial["hyperparameters"]},
                {"trial/objective": trial["objective"]},
            )
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="artifacts", help="the pipeline root of the runs")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="a table of runs")
    listing.add_argument("--sort", choices=["newest", "best"], default="newest")
    listing.add_argument("--group", help="only runs of this experiment group")
    commands.add_parser("show", help="everything about one run").add_argument("run")
    pair = commands.add_parser("compare", help="two runs side by side")
    pair.add_argument("run", nargs=2)
    board = commands.add_parser("tensorboard", help="TensorBoard on the runs: epochs, HParams")
    board.add_argument("--port", type=int, default=6006)
    board.add_argument("--no-serve", action="store_true", help="only write <root>/tensorboard")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow and TFMA warnings")
    args = parser.parse_args(argv)
    quiet(args.verbose)
    runs = load_runs(os.path.join(args.root, "metadata.sqlite"))
    try:
        if args.command == "list":
            chosen = [r for r in runs if args.group is None or r.group == args.group]
            print(
                table(
                    list_rows(best_first(chosen) if args.sort == "best" else chosen), LIST_HEADERS
                )
            )
        elif args.command == "tensorboard":
            logdir = tensorboard_logdir(runs, os.path.join(args.root, "tensorboard"))
            print(f"TensorBoard logdir: {logdir}")
            if not args.no_serve:
                return subprocess.call(
                    [
                        sys.executable,
                        "-m",
                        "tensorboard.main",
                        "--logdir",
                        logdir,
                        "--port",
                        str(args.port),
                    ]
                )
        elif args.command == "show":
            print(show(find_run(runs, args.run)))
        else:
            print(compare(*(find_run(runs, text) for text in args.run)))
    except LookupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
