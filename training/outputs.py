"""Reads what a pipeline run did from its ML Metadata store: each component's state (run or taken
from cache), its wall time and its output artifacts. The CLI's summary, `training.runs`, the
report, the tests and the benchmark all read runs this way instead of guessing from directories.

A run is a `pipeline_run` context. The local runner names it itself (`new_run_id`) and creates it
before TFX does, with what TFX does not record (the experiment group, the config as given, start,
end and outcome), so concurrent runs on one store each find their own run, not the newest one.
"""

import dataclasses
import datetime
import os
import random
import time

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
RUN_TYPE = "pipeline_run"
OPEN_ATTEMPTS = 10


@dataclasses.dataclass
class NodeRun:
    node: str  # the component id, e.g. "Trainer"
    state: str  # "COMPLETE", "CACHED", "FAILED", ...
    seconds: float
    outputs: dict  # output key -> [metadata_store_pb2.Artifact]
    execution: object = None  # the metadata_store_pb2.Execution (its exec properties)


def open_store(metadata_path: str, readonly: bool = True) -> metadata_store.MetadataStore:
    """The store at `metadata_path`. MLMD waits on a locked SQLite file for about 2 s and retries
    aborted calls, but not opening the store (which creates or checks its tables in a
    transaction): while other runs write, that is retried here."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        if readonly
        else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return metadata_store.MetadataStore(config)
        except RuntimeError as e:
            if not any(m in str(e) for m in RETRIED) or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.5, 2))


# What MLMD says when another process holds or is creating the store: both pass on a retry.
RETRIED = ("Concurrent writes aborted", "concurrent connection to the empty database")


def new_run_id() -> str:
    """TFX's own run id format, plus the process id: unique among concurrent local runs."""
    return f"{datetime.datetime.now():%Y%m%d-%H%M%S.%f}-{os.getpid()}"


def record_run(metadata_path: str, run_id: str, properties: dict) -> None:
    """Creates the run's context if TFX has not yet, and sets `properties` (str, int or float) on it.
    TFX reuses an existing context of that name, so its executions join this one."""
    store = open_store(metadata_path, readonly=False)
    type_id = store.put_context_type(metadata_store_pb2.ContextType(name=RUN_TYPE))
    context = store.get_context_by_type_and_name(RUN_TYPE, run_id)
    if context is None:
        context = metadata_store_pb2.Context(type_id=type_id, name=run_id)
    for name, value in properties.items():
        field = {str: "string_value", int: "int_value", float: "double_value"}[type(value)]
        setattr(context.custom_properties[name], field, value)
    store.put_contexts([context])


def latest_run(metadata_path: str, run_id: str | None = None) -> dict:
    """{component id: NodeRun} for run `run_id`, or the most recent run recorded at `metadata_path`."""
    store = open_store(metadata_path)
    if run_id is not None:
        run = store.get_context_by_type_and_name(RUN_TYPE, run_id)
        return run_nodes(store, run) if run else {}
    runs = store.get_contexts_by_type(RUN_TYPE)
    return run_nodes(store, max(runs, key=lambda c: c.create_time_since_epoch)) if runs else {}


def run_nodes(store, run) -> dict:
    """{component id: NodeRun} of the executions in the `run` context, in execution order."""
    result = {}
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        node = next(
            c.name.rsplit(".", 1)[-1]
            for c in store.get_contexts_by_execution(execution.id)
            if c.type == "node"
        )
        outputs: dict[str, list] = {}
        events = store.get_events_by_execution_ids([execution.id])
        for event in events:
            if event.type == metadata_store_pb2.Event.OUTPUT:
                key = event.path.steps[0].key
                outputs.setdefault(key, []).extend(store.get_artifacts_by_id([event.artifact_id]))
        result[node] = NodeRun(
            node=node,
            state=_STATES[execution.last_known_state],
            seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch)
            / 1000,
            outputs=outputs,
            execution=execution,
        )
    return result


def custom_property(artifact, name: str, default=None):
    """The value of an artifact's (or context's, execution's) custom property, whatever its type."""
    if name not in artifact.custom_properties:
        if default is not None:
            return default
        raise KeyError(name)
    value = artifact.custom_properties[name]
    return getattr(value, value.WhichOneof("value"))
