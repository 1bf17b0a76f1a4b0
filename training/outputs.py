"""Reads what the latest pipeline run did from its ML Metadata store: each component's state
(run or taken from cache), its wall time and its output artifacts. The CLI's summary, the tests
and the benchmark all read runs this way instead of guessing from directories.
"""

import dataclasses

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


@dataclasses.dataclass
class NodeRun:
    node: str  # the component id, e.g. "Trainer"
    state: str  # "COMPLETE", "CACHED", "FAILED", ...
    seconds: float
    outputs: dict  # output key -> [metadata_store_pb2.Artifact]


def latest_run(metadata_path: str) -> dict:
    """{component id: NodeRun} for the most recent pipeline run recorded at `metadata_path`."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        return {}
    run = max(runs, key=lambda c: c.create_time_since_epoch)
    result = {}
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        node = next(
            c.name.rsplit(".", 1)[-1]
            for c in store.get_contexts_by_execution(execution.id)
            if c.type == "node"
        )
        outputs = {}
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
        )
    return result


def custom_property(artifact, name: str):
    """The value of an artifact's custom property, whatever its type."""
    value = artifact.custom_properties[name]
    return getattr(value, value.WhichOneof("value"))
