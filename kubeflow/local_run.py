"""Runs a compiled Kubeflow Pipelines spec (kubeflow.runner's IR YAML) on this machine, task by
task, the way KFP's backend runs its containers, so a spec can be tried before it is submitted.

For each task of the root DAG, in dependency order, it builds the task's ExecutorInput as KFP's
launcher does: input parameters (the spec's constants, pipeline parameters' defaults), input
artifacts (the upstream tasks' output artifacts, with the metadata their executors reported),
output artifacts (URI `<root>/<pipeline>/<run>/<task>/<key>`, empty metadata) and the output file
`<root>/<pipeline>/<run>/<task>/executor_output.json`. Then:

- an `importer` executor materializes its artifact (its URI and type, nothing runs);
- a `container` executor first runs its `lifecycle.preCacheCheck` (TFX's file-based ExampleGen
  driver: it writes the span, version, fingerprint and the resolved input config to the output
  file) and passes the output artifact's metadata it computed on to the executor, as Vertex AI
  does; then runs the container's command and arguments, `{{$}}` replaced by the ExecutorInput
  JSON and `python` by this project's interpreter (the image holds this same project), as a
  subprocess whose output goes to `<task dir>/log.txt`;
- reads the executor output and checks that every output artifact was written.

Image paths in parameters (the curated schemas at kubeflow.runner's IMAGE_SCHEMA_DIR) are mapped
to this checkout's files; `--path-map CONTAINER=HOST` adds others.

What it does not do: no cache (every task runs each time; `--only` with `--run-id` reruns some
tasks of an earlier run, reusing its other outputs), no parallelism (one task at a time), no
containers (tasks run in this machine's environment, so the image itself is not tested), none of
Argo's or Kubernetes' features (resource requests and limits, volumes, secrets, retries,
timeouts, node selectors), no conditions, loops or nested DAGs, no placeholder but `{{$}}`, no ML
Metadata. kfp 2.5's own `kfp.local` cannot do this: its SubprocessRunner refuses container
components, its DockerRunner needs Docker, and it runs single components without input
artifacts, not pipelines.
"""

import argparse
import copy
import graphlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kubeflow.runner import IMAGE_SCHEMA_DIR
from kubeflow.spec import unrunnable_executors
from pipeline.tasks import SCHEMA_DIR

EXECUTOR_OUTPUT = "executor_output.json"
LOG_FILE = "log.txt"
LOG_TAIL_LINES = 25
WHOLE_INPUT = "{{$}}"  # KFP's placeholder for the whole ExecutorInput as JSON
DEFAULT_PATH_MAP = {IMAGE_SCHEMA_DIR: SCHEMA_DIR}
SHOWN_METADATA = ("blessed", "pushed", "pushed_destination")  # printed after each task


class LocalRunError(Exception):
    """A spec this runner cannot run, or a task that failed (the message names it)."""


@dataclass
class TaskRun:
    name: str
    status: str  # "succeeded", "imported" or "reused" (an earlier run's outputs, with --only)
    seconds: float
    outputs: dict  # output key -> RuntimeArtifact as a JSON dict


def load_spec(path: str | Path) -> dict:
    """The PipelineSpec in a compiled `.yaml` (or a Vertex PipelineJob `.json`), checked for what
    this runner supports."""
    import yaml

    try:
        spec = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise LocalRunError(f"{path}: cannot read the spec: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise LocalRunError(f"{path}: not YAML or JSON: {e}") from e
    if isinstance(spec, dict) and "pipelineSpec" in spec:
        spec = spec["pipelineSpec"]
    if not isinstance(spec, dict) or not {"root", "components", "deploymentSpec"} <= set(spec):
        raise LocalRunError(
            f"{path}: not a KFP pipeline spec (no root, components, deploymentSpec)"
        )
    _check_supported(spec, str(path))
    return spec


def _check_supported(spec: dict, where: str) -> None:
    bad = unrunnable_executors(spec)
    if bad:
        raise LocalRunError(f"{where}: executors of kinds other than container/importer: {bad}")
    for name, task in spec["root"]["dag"]["tasks"].items():
        unsupported = {"triggerPolicy", "iteratorPolicy", "parameterIterator", "artifactIterator"}
        found = unsupported & set(task)
        if found:
            raise LocalRunError(f"{where}: task {name}: {sorted(found)} are not supported")
        component = spec["components"].get(task.get("componentRef", {}).get("name"))
        if component is None:
            raise LocalRunError(f"{where}: task {name}: its component is not in the spec")
        if "executorLabel" not in component:
            raise LocalRunError(f"{where}: task {name}: nested DAGs are not supported")
        if component["executorLabel"] not in spec["deploymentSpec"]["executors"]:
            raise LocalRunError(f"{where}: task {name}: its executor is not in the spec")


def task_order(spec: dict) -> list[str]:
    """The root DAG's tasks, each after the tasks it depends on or takes artifacts from."""
    graph = {}
    for name, task in sorted(spec["root"]["dag"]["tasks"].items()):
        upstream = set(task.get("dependentTasks", []))
        for source in task.get("inputs", {}).get("artifacts", {}).values():
            if "taskOutputArtifact" in source:
                upstream.add(source["taskOutputArtifact"]["producerTask"])
        unknown = upstream - set(spec["root"]["dag"]["tasks"])
        if unknown:
            raise LocalRunError(f"task {name} depends on tasks not in the spec: {sorted(unknown)}")
        graph[name] = sorted(upstream)
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        raise LocalRunError(f"the tasks depend on each other in a cycle: {e.args[1]}") from e


def _map_paths(value, path_map: dict):
    """A string parameter with each container path (a whole path component) replaced."""
    if not isinstance(value, str):
        return value
    for container, host in path_map.items():
        pattern = re.escape(container.rstrip("/")) + r"(?![\w.-])"
        value = re.sub(pattern, host.rstrip("/").replace("\\", r"\\"), value)  # literal
    return value


def _constant(source: dict):
    """A runtimeValue's value: `constant` (spec 2.1) or the older typed `constantValue`."""
    if "constant" in source:
        return source["constant"]
    [value] = source["constantValue"].values()
    return value


def _parameters(spec: dict, name: str, path_map: dict) -> dict:
    task = spec["root"]["dag"]["tasks"][name]
    component = spec["components"][task["componentRef"]["name"]]
    pipeline_inputs = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    values = {
        key: definition["defaultValue"]
        for key, definition in component.get("inputDefinitions", {}).get("parameters", {}).items()
        if "defaultValue" in definition
    }
    for key, source in task.get("inputs", {}).get("parameters", {}).items():
        if "runtimeValue" in source:
            values[key] = _constant(source["runtimeValue"])
        elif "defaultValue" in pipeline_inputs.get(source.get("componentInputParameter"), {}):
            values[key] = pipeline_inputs[source["componentInputParameter"]]["defaultValue"]
        else:
            raise LocalRunError(
                f"task {name}: parameter {key} comes from {json.dumps(source)}: only constants "
                "and pipeline parameters with a default are supported"
            )
    return {key: _map_paths(value, path_map) for key, value in values.items()}


def _output_artifacts(spec: dict, name: str, run_id: str, task_dir: Path) -> dict:
    """{key: RuntimeArtifact} as the launcher creates them: typed, URI under the task's
    directory, no metadata yet."""
    component = spec["components"][spec["root"]["dag"]["tasks"][name]["componentRef"]["name"]]
    return {
        key: {
            "name": f"{run_id}/{name}/{key}",
            "type": definition["artifactType"],
            "uri": str(task_dir / key),
            "metadata": {},
        }
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items()
    }


def executor_input(
    spec: dict, name: str, done: dict, run_id: str, task_dir: Path, path_map: dict
) -> dict:
    """The task's ExecutorInput (a JSON dict), checked against KFP's message."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    artifacts = {}
    for key, source in (
        spec["root"]["dag"]["tasks"][name].get("inputs", {}).get("artifacts", {}).items()
    ):
        if "taskOutputArtifact" not in source:
            raise LocalRunError(
                f"task {name}: input artifact {key}: only task outputs are supported"
            )
        producer = source["taskOutputArtifact"]
        artifacts[key] = {
            "artifacts": [done[producer["producerTask"]][producer["outputArtifactKey"]]]
        }
    message = {
        "inputs": {"parameterValues": _parameters(spec, name, path_map), "artifacts": artifacts},
        "outputs": {
            "artifacts": {
                key: {"artifacts": [artifact]}
                for key, artifact in _output_artifacts(spec, name, run_id, task_dir).items()
            },
            "outputFile": str(task_dir / EXECUTOR_OUTPUT),
        },
    }
    json_format.ParseDict(message, pipeline_spec_pb2.ExecutorInput())
    return message


def _argv(command: list, args: list, message: dict, name: str) -> list[str]:
    serialized = json.dumps(message)
    argv = [part.replace(WHOLE_INPUT, serialized) for part in [*command, *args]]
    leftover = [part for part in argv if "{{$" in part.replace(serialized, "")]
    if leftover:
        raise LocalRunError(f"task {name}: placeholders other than {WHOLE_INPUT}: {leftover}")
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def _log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _run_process(argv: list, env: dict, task_dir: Path, name: str, what: str) -> None:
    log = task_dir / LOG_FILE
    with log.open("a") as out:
        out.write(f"$ {what}\n")
        out.flush()
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        raise LocalRunError(
            f"task {name} failed: its {what} exited with code {code}; log {log}, last lines:\n"
            + _log_tail(log)
        )


def _read_output_file(path: Path, name: str) -> dict:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not path.exists():
        raise LocalRunError(f"task {name}: wrote no executor output ({path})")
    try:
        output = json.loads(path.read_text())
        json_format.ParseDict(
            output, pipeline_spec_pb2.ExecutorOutput(), ignore_unknown_fields=True
        )
    except (ValueError, json_format.ParseError) as e:
        raise LocalRunError(f"task {name}: {path} is not an ExecutorOutput: {e}") from e
    return output


def _merge_outputs(expected: dict, output: dict) -> dict:
    """The output artifacts updated with what the executor reported (metadata, a new URI)."""
    merged = copy.deepcopy(expected)
    for key, artifact in merged.items():
        reported = output.get("artifacts", {}).get(key, {}).get("artifacts", [{}])[0]
        artifact["metadata"].update(reported.get("metadata", {}))
        artifact["uri"] = reported.get("uri") or artifact["uri"]
    return merged


def _collected_outputs(spec, name: str, run_id: str, task_dir: Path) -> dict:
    """The task's output artifacts from its executor output, each checked to be reported and
    written (a model the Pusher did not push, `pushed` 0, has nothing at its URI by design)."""
    output = _read_output_file(task_dir / EXECUTOR_OUTPUT, name)
    outputs = _merge_outputs(_output_artifacts(spec, name, run_id, task_dir), output)
    for key, artifact in outputs.items():
        if key not in output.get("artifacts", {}):
            raise LocalRunError(f"task {name}: its executor output does not report output {key}")
        uri = artifact["uri"]
        if "://" not in uri and not os.path.exists(uri) and artifact["metadata"].get("pushed") != 0:
            raise LocalRunError(f"task {name}: output {key} was not written ({uri})")
    return outputs


def _noteworthy(outputs: dict) -> str:
    """The outcome outputs' metadata records (blessed, pushed, where), for the progress line."""
    notes = []
    for key, artifact in outputs.items():
        shown = [(m, artifact["metadata"][m]) for m in SHOWN_METADATA if m in artifact["metadata"]]
        if shown:
            notes.append(f"{key}: " + ", ".join(f"{m} {_plain(v)}" for m, v in shown))
    return f" ({'; '.join(notes)})" if notes else ""


def _plain(value) -> str:
    """JSON numbers as they were meant (KFP metadata holds every integer as a float)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _run_container(container: dict, message: dict, name: str, task_dir: Path) -> None:
    env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}}
    driver = container.get("lifecycle", {}).get("preCacheCheck")
    if driver:
        argv = _argv(driver.get("command", []), driver.get("args", []), message, name)
        _run_process(argv, env, task_dir, name, "pre-cache-check driver")
        computed = _read_output_file(Path(message["outputs"]["outputFile"]), name)
        artifacts = message["outputs"]["artifacts"]
        merged = _merge_outputs({k: v["artifacts"][0] for k, v in artifacts.items()}, computed)
        message = {
            **message,
            "outputs": {
                **message["outputs"],
                "artifacts": {key: {"artifacts": [artifact]} for key, artifact in merged.items()},
            },
        }
    argv = _argv(container.get("command", []), container.get("args", []), message, name)
    _run_process(argv, env, task_dir, name, "executor")


def _importer(spec: dict, name: str, importer: dict, path_map: dict) -> dict:
    component = spec["components"][spec["root"]["dag"]["tasks"][name]["componentRef"]["name"]]
    [key] = component["outputDefinitions"]["artifacts"]
    source = importer["artifactUri"]
    if "runtimeParameter" in source:
        uri = _parameters(spec, name, path_map)[source["runtimeParameter"]]
    else:
        uri = _map_paths(_constant(source), path_map)
    if "://" not in uri and not os.path.exists(uri):
        raise LocalRunError(f"task {name}: the importer's artifact {uri} does not exist")
    artifact = {
        "name": f"{name}/{key}",
        "type": importer["typeSchema"],
        "uri": uri,
        "metadata": dict(importer.get("metadata", {})),
    }
    return {key: artifact}


def run_spec(
    spec: dict,
    root: str | Path,
    run_id: str | None = None,
    only: tuple = (),
    path_map: dict | None = None,
    echo=print,
) -> list[TaskRun]:
    """Runs the spec's tasks under `root`; with `only`, just those tasks of run `run_id`, the
    others' outputs taken from that earlier run. Raises LocalRunError naming a failed task."""
    tasks = spec["root"]["dag"]["tasks"]
    unknown = sorted(set(only) - set(tasks))
    if unknown:
        raise LocalRunError(f"--only: no task {unknown} in the spec (tasks: {sorted(tasks)})")
    if only and not run_id:
        raise LocalRunError("--only needs --run-id: the earlier run whose other outputs it reuses")
    run_id = run_id or datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    paths = {**DEFAULT_PATH_MAP, **(path_map or {})}
    run_dir = Path(root).resolve() / spec["pipelineInfo"]["name"] / run_id
    order = task_order(spec)
    echo(f"Run {run_id}: {len(order)} tasks under {run_dir}")
    done: dict = {}
    runs = []
    for number, name in enumerate(order, 1):
        task_dir = run_dir / name
        executor = spec["deploymentSpec"]["executors"][
            spec["components"][tasks[name]["componentRef"]["name"]]["executorLabel"]
        ]
        started = time.monotonic()
        if "importer" in executor:
            done[name], status = _importer(spec, name, executor["importer"], paths), "imported"
        elif only and name not in only:
            done[name], status = _collected_outputs(spec, name, run_id, task_dir), "reused"
        else:
            echo(f"[{number}/{len(order)}] {name} ...")
            task_dir.mkdir(parents=True, exist_ok=True)
            (task_dir / EXECUTOR_OUTPUT).unlink(missing_ok=True)
            message = executor_input(spec, name, done, run_id, task_dir, paths)
            _run_container(executor["container"], message, name, task_dir)
            done[name], status = _collected_outputs(spec, name, run_id, task_dir), "succeeded"
        seconds = time.monotonic() - started
        runs.append(TaskRun(name, status, seconds, done[name]))
        echo(f"[{number}/{len(order)}] {name}: {status} in {seconds:.1f}s{_noteworthy(done[name])}")
    echo(f"Run {run_id} succeeded: {sum(r.seconds for r in runs):.0f}s; outputs in {run_dir}")
    return runs


def _path_pair(text: str) -> tuple[str, str]:
    container, sep, host = text.partition("=")
    if not sep or not container or not host:
        raise argparse.ArgumentTypeError(f"expected CONTAINER_PATH=HOST_PATH, got {text!r}")
    return container, host


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="a spec compiled by kubeflow.runner (.yaml)")
    parser.add_argument("--root", required=True, help="local pipeline root for the outputs")
    parser.add_argument("--run-id", help="name of the run (default: a timestamp)")
    parser.add_argument(
        "--only",
        nargs="+",
        default=(),
        metavar="TASK",
        help="run only these tasks of run --run-id, reusing its other tasks' outputs",
    )
    parser.add_argument(
        "--path-map",
        action="append",
        type=_path_pair,
        default=[],
        metavar="CONTAINER=HOST",
        help=f"a path in the image and where it is here (always {IMAGE_SCHEMA_DIR}={SCHEMA_DIR})",
    )
    args = parser.parse_args(argv)
    try:
        run_spec(
            load_spec(args.spec), args.root, args.run_id, tuple(args.only), dict(args.path_map)
        )
    except LocalRunError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
