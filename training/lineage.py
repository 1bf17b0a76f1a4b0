"""Where a pushed model came from, read back from ML Metadata:

    python -m training.lineage [VERSION] [--model characters] [--root artifacts]
        [--serving-dir <root>/serving] [--metadata <root>/metadata.sqlite] [--json]

For a version in the push layout (default: the model's newest), the run that pushed it, the
examples artifacts it trained on with their spans and the dataset version behind each (its
metadata.json, data.versions: source, sha256 of every input file, counts per split), the
Trainer's kept epoch, the Evaluator's metrics and blessing, and the config. Runs are read with
training.runs (`load_runs`, `Run`); nothing here queries MLMD itself.
"""

import argparse
import json
import os
import sys

from common.push_layout import CHARACTERS_MODEL, model_dir, newest_version, version_dir
from common.quiet import quiet
from data.versions import METADATA_FILE, SPAN_PREFIX, read_metadata
from training.outputs import custom_property


def pushing_run(runs: list, destination: str):
    """The run whose Pusher pushed to `destination` (a version folder), or None; later runs
    that found the model already pushed did not push it."""
    target = os.path.realpath(destination)
    for run in sorted(runs, key=lambda r: r.id):
        pushed = run.artifact_property("Pusher", "pushed_model", "pushed_destination", "")
        done = run.artifact_property("Pusher", "pushed_model", "pushed", 0)
        if done and pushed and os.path.realpath(pushed) == target:
            return run
    return None


def data_lineage(run) -> list:
    """[{node, key, uri, span, input_base, dataset_metadata, dataset}] of every examples
    artifact of the run: `dataset` is the metadata.json of the prepared span an ExampleGen read
    (`dataset_metadata` its path), if it has one."""
    rows = []
    for name, node in run.nodes.items():
        for key, artifacts in node.outputs.items():
            if not key.endswith("examples"):
                continue
            for artifact in artifacts:
                span = custom_property(artifact, "span", -1)
                base = custom_property(node.execution, "input_base", "")
                folder = os.path.join(base, f"{SPAN_PREFIX}{span}") if base else ""
                dataset = read_metadata(folder) if folder else {}
                rows.append(
                    {
                        "node": name,
                        "key": key,
                        "uri": artifact.uri,
                        "span": None if span == -1 else span,
                        "input_base": base,
                        "dataset_metadata": os.path.join(folder, METADATA_FILE) if dataset else "",
                        "dataset": dataset,
                    }
                )
    return rows


def lineage(run, destination: str) -> dict:
    """Everything `python -m training.lineage` prints, as one JSON-able dict."""
    return {
        "model": destination,
        "run": {"id": run.id, "name": run.name, "status": run.status, "group": run.group},
        "config": run.config,
        "data": data_lineage(run),
        "trainer": {
            "model": run.uri("Trainer", "model"),
            "kept_epoch": run.training.get("kept_epoch"),
            "kept_by": run.training.get("kept_by"),
        },
        "evaluation": {
            "metrics": run.metrics.get((), {}),
            "blessed": bool(run.blessed),
            "failures": run.validation,
        },
    }


def format_lineage(record: dict) -> str:
    run = record["run"]
    lines = [
        f"model {record['model']}",
        f"pushed by run {run['name']} (id {run['id']}, {run['status']}; "
        f"python -m training.runs show {run['name']})",
        "config: " + json.dumps(record["config"], sort_keys=True),
        "data:",
    ]
    for row in record["data"]:
        span = "" if row["span"] is None else f" span {row['span']}"
        lines.append(f"  {row['node']}.{row['key']}{span}: {row['uri']}")
        dataset = row["dataset"]
        if dataset:
            counts = ", ".join(f"{split} {n}" for split, n in dataset.get("counts", {}).items())
            lines += [
                f"    dataset {dataset.get('dataset')} span {dataset.get('span')}, created "
                f"{dataset.get('created_at')}: {row['dataset_metadata']}",
                f"    source {dataset.get('source')}; {len(dataset.get('input_sha256', {}))} "
                f"input files (sha256 in the metadata); {counts}",
                f"    fingerprint {dataset.get('fingerprint')}",
            ]
        elif row["input_base"]:
            lines.append(f"    read from {row['input_base']} (no dataset version metadata)")
    trainer, evaluation = record["trainer"], record["evaluation"]
    lines.append(
        f"trainer: kept epoch {trainer['kept_epoch']} by {trainer['kept_by']}: {trainer['model']}"
    )
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(evaluation["metrics"].items()))
    lines.append(f"evaluation: {metrics}")
    lines.append(
        "BLESSED" if evaluation["blessed"] else "NOT blessed: " + "; ".join(evaluation["failures"])
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", nargs="?", type=int, help="pushed version (default: newest)")
    parser.add_argument("--model", default=CHARACTERS_MODEL, help="served model name")
    parser.add_argument("--root", default="artifacts", help="the pipeline root of the runs")
    parser.add_argument("--serving-dir", help="push base directory (default <root>/serving)")
    parser.add_argument("--metadata", help="ML Metadata store (default <root>/metadata.sqlite)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow and TFMA warnings")
    args = parser.parse_args(argv)
    quiet(args.verbose)
    from training.runs import load_runs

    versions_dir = model_dir(args.serving_dir or os.path.join(args.root, "serving"), args.model)
    metadata = args.metadata or os.path.join(args.root, "metadata.sqlite")
    version = args.version if args.version is not None else newest_version(versions_dir)
    if version is None:
        print(f"error: no pushed versions of {args.model!r} in {versions_dir}", file=sys.stderr)
        return 2
    destination = version_dir(versions_dir, version)
    if not os.path.isdir(destination):
        print(f"error: {destination}: no such pushed version", file=sys.stderr)
        return 2
    if not os.path.exists(metadata):
        print(f"error: {metadata}: no ML Metadata store", file=sys.stderr)
        return 2
    run = pushing_run(load_runs(metadata), destination)
    if run is None:
        print(f"error: no run recorded in {metadata} pushed {destination}", file=sys.stderr)
        return 2
    record = lineage(run, destination)
    print(json.dumps(record, indent=1) if args.json else format_lineage(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
