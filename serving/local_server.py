"""A local stand-in for TensorFlow Serving, for machines without Docker.

**Production serves the pushed models with TensorFlow Serving** (`serving/docker-compose.yml`:
the official `tensorflow/serving:2.16.1` image with `serving/config/*.config`). This server exists
so that the same clients and the same contract tests (`tests/test_serving_contract.py`) run on a
machine without Docker or a TF Serving binary. It is not a production server: it runs the models
in this Python process (batching requests together only with `--enable_batching`), and has no
TLS or auth.

It serves the push directory (`<root>/<model name>/<integer version>/saved_model.pb`) over the
same APIs as TF Serving 2.16:

- REST: `GET /v1/models/<name>[/versions/<v>|/labels/<l>]` (model version status),
  `GET /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata` (signature defs) and
  `POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict` with `{"instances": [...]}` (row
  format) or `{"inputs": ...}` (columnar), binary values as `{"b64": "..."}`. Errors are
  `{"error": "..."}` with TF Serving's HTTP status codes (400 bad request, 404 unknown model or
  version); 413 for a body over `--max_request_bytes` or a binary value over
  `--max_image_bytes` (TF Serving itself has no such limits).
- gRPC: `tensorflow.serving.PredictionService/Predict` and `/GetModelMetadata`,
  `tensorflow.serving.ModelService/GetModelStatus`, with TF Serving's status codes.

Like TF Serving it polls the model base paths every `--file_system_poll_wait_seconds`, loads a
new version in the background while the loaded ones keep serving, and swaps it in atomically once
loaded; the version policy (`latest {num_versions: N}`, `all`, `specific`) decides which versions
stay loaded, and old versions are unloaded only once a version the policy wants is available.
A version directory is loaded once its files have stopped changing between two polls, so a
non-atomic copy is not read half-written; a version that fails to load is reported (state END
with the error) and retried when its files change.

With `--enable_batching [--batching_parameters_file F]` (TF Serving's flags; F is a
BatchingParameters text proto such as serving/config/batching.config), concurrent Predict calls
(REST and gRPC) for the same model version and signature are merged into one model call of at
most `max_batch_size` examples, waiting at most `batch_timeout_micros` for a batch to fill, run
by `num_batch_threads` threads; once `max_enqueued_batches` batches wait, further requests get
UNAVAILABLE (HTTP 503), as from TF Serving. See `Batcher` for how it differs from TF Serving
(requests larger than `max_batch_size` run on their own). The Prometheus metrics count model
calls and the examples they processed, so the effect of batching can be seen there.

Deliberate differences from TF Serving, as documented in README.md: labels in the model config
may point at versions that are not loaded yet (TF Serving needs
`--allow_version_labels_for_unavailable_models` for that; requests by such a label get 404 until
the version is available); the config file is read once at start-up; only `:predict` is served.
As in TF Serving, an unknown label is an INVALID_ARGUMENT (HTTP 400), and a status request by
label reports every version of the model.

    python -m serving.local_server --model_config_file serving/config/models.config \\
        --model_base_path_root artifacts/serving --rest_port 8501 --grpc_port 8500
    python -m serving.local_server --models_dir artifacts/serving   # every model found, newest version
    python -m serving.local_server --models_dir artifacts/serving --enable_batching \\
        --batching_parameters_file serving/config/batching.config
"""

import argparse
import base64
import binascii
import collections
import dataclasses
import http.server
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.config_protos import (
    read_batching_parameters,
    read_model_server_config,
    read_monitoring_config,
)

logger = logging.getLogger("serving.local_server")

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"
CONTAINER_MODELS_DIR = "/models"  # where docker-compose.yml mounts the push directory
MiB = 1024 * 1024
# A body over --max_request_bytes is read and discarded up to this size (so the client sees the
# 413 rather than a reset connection); beyond it the connection is simply closed.
_DRAIN_LIMIT = 256 * MiB
_INT64_MAX = 2**63 - 1

_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    """A request that cannot be served: a gRPC status code, its HTTP status, and a message."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or _HTTP_STATUS.get(code, 500)


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def too_large(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)


def _tf_error(error: tf.errors.OpError) -> ServingError:
    """The op's own message (e.g. "Unknown image file format...") without TF's stack preamble."""
    lines = [
        line
        for line in error.message.splitlines()
        if line.strip()
        and not line.startswith(("Graph execution error", "Detected at node"))
        and "<stack traces unavailable>" not in line
    ]
    message = " ".join(line.strip() for line in lines) or type(error).__name__
    return ServingError(_CODE_BY_NUMBER.get(error.error_code, grpc.StatusCode.UNKNOWN), message)


# --- models and versions -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """One model: where its versions are, which to serve, and its version labels."""

    name: str
    base_path: Path
    policy: tuple = ("latest", 1)  # ("latest", n) | ("all",) | ("specific", frozenset)
    labels: tuple = ()  # ((label, version), ...)

    def aspired(self, present: set) -> set:
        """The versions (of those present) that the policy wants loaded."""
        kind = self.policy[0]
        if kind == "all":
            return set(present)
        if kind == "specific":
            return set(present) & set(self.policy[1])
        return set(sorted(present, reverse=True)[: self.policy[1]])


def sources_from_config(path, base_path_root=None) -> list:
    """ModelSources from a TF Serving ModelServerConfig file. Base paths under /models (the
    container's mount point) and relative ones are taken relative to `base_path_root`."""
    config = read_model_server_config(path)
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path}: only model_config_list configs are supported")
    sources, names = [], set()
    for model in config.model_config_list.config:
        if not model.name:
            raise ValueError(f"{path}: a model config has no name")
        if model.name in names:
            raise ValueError(f"{path}: model {model.name!r} is configured twice")
        names.add(model.name)
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{path}: model {model.name}: platform {model.model_platform!r} "
                             "is not supported (only 'tensorflow')")
        sources.append(ModelSource(
            name=model.name,
            base_path=_map_base_path(model.base_path, base_path_root),
            policy=_policy(model.model_version_policy),
            labels=tuple(sorted(model.version_labels.items())),
        ))
    return sources


def _map_base_path(base_path: str, root) -> Path:
    if not base_path:
        raise ValueError("a model config has no base_path")
    if root is None:
        return Path(base_path)
    container = CONTAINER_MODELS_DIR
    if base_path == container or base_path.startswith(container + "/"):
        return Path(root) / base_path[len(container):].lstrip("/")
    path = Path(base_path)
    return path if path.is_absolute() else Path(root) / path


def _policy(policy) -> tuple:
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return ("all",)
    if kind == "specific":
        return ("specific", frozenset(policy.specific.versions))
    if kind == "latest":
        return ("latest", max(1, policy.latest.num_versions))
    return ("latest", 1)  # TF Serving's default


def _read_signature_defs(path: Path) -> dict:
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no MetaGraph tagged 'serve'")


class Servable:
    """One loaded version of a model: its signature functions and SignatureDefs."""

    def __init__(self, name: str, version: int, path: Path):
        self.name, self.version, self.path = name, version, path
        self.signature_defs = _read_signature_defs(path)
        self._loaded = tf.saved_model.load(str(path))
        self._functions = dict(self._loaded.signatures)

    def signature(self, name: str, grpc_api: bool = False):
        """(signature name, SignatureDef) for a request's signature name ('' is the default)."""
        name = name or DEFAULT_SIGNATURE
        signature_def = self.signature_defs.get(name)
        if signature_def is None:
            if grpc_api:
                raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                   f'Serving signature key "{name}" not found.')
            raise invalid(f'Serving signature name: "{name}" not found in signature def')
        if not signature_def.inputs or name not in self._functions:
            raise invalid(f"Failed to get input map for signature: {name}")
        return name, signature_def

    def prepare(self, signature_name: str, inputs: dict, output_filter=()) -> tuple:
        """Checks a request's numpy inputs (keyed by input alias) and output filter against the
        signature: (signature name, {alias: array of the input's dtype}, wanted output aliases;
        () for all). Raises ServingError for what TF Serving would refuse."""
        signature_name, signature_def = self.signature(signature_name)
        expected = set(signature_def.inputs)
        if set(inputs) != expected:
            raise invalid(
                f"input size does not match signature: {len(inputs)}!={len(expected)} "
                f"len({{{','.join(sorted(inputs))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(set(inputs) - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - set(inputs)))}}}."
            )
        for alias in output_filter:
            if alias not in signature_def.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias} Outputs "
                              f"expected to be in the set {{{','.join(sorted(signature_def.outputs))}}}.")
        arrays = {alias: _checked_array(alias, array, signature_def.inputs[alias])
                  for alias, array in inputs.items()}
        return signature_name, arrays, tuple(output_filter)

    def execute(self, signature_name: str, arrays: dict, wanted=()) -> dict:
        """Runs a signature on inputs checked by prepare(); outputs as numpy arrays."""
        signature_def = self.signature_defs[signature_name]
        tensors = {alias: tf.constant(array, dtype=tf.dtypes.as_dtype(signature_def.inputs[alias].dtype))
                   for alias, array in arrays.items()}
        try:
            outputs = self._functions[signature_name](**tensors)
        except tf.errors.OpError as e:
            raise _tf_error(e) from None
        except (TypeError, ValueError) as e:
            raise invalid(str(e)) from None
        return {alias: outputs[alias].numpy() for alias in (list(wanted) or list(outputs))}

    def run(self, signature_name: str, inputs: dict, output_filter=()) -> dict:
        """Runs a signature on numpy inputs (keyed by input alias); outputs as numpy arrays."""
        return self.execute(*self.prepare(signature_name, inputs, output_filter))


def _checked_array(alias: str, array: np.ndarray, info) -> np.ndarray:
    """The array if it fits the TensorInfo's dtype and shape (numbers converted to its dtype)."""
    dtype = tf.dtypes.as_dtype(info.dtype)
    if dtype == tf.string:
        if array.dtype != object and array.dtype.kind not in "SU":
            raise invalid(f"input {alias}: expects {dtype.name} but {array.dtype} is provided")
    elif array.dtype == object or not np.can_cast(array.dtype, dtype.as_numpy_dtype, "same_kind"):
        raise invalid(f"input {alias}: expects {dtype.name} but {array.dtype} is provided")
    shape = info.tensor_shape
    if not shape.unknown_rank:
        dims = [d.size for d in shape.dim]
        if len(dims) != array.ndim or any(d >= 0 and d != n for d, n in zip(dims, array.shape)):
            wanted = "[" + ",".join("?" if d < 0 else str(d) for d in dims) + "]"
            raise invalid(f"input {alias}: expects shape {wanted} but got {list(array.shape)}")
    if dtype != tf.string:
        array = np.asarray(array, dtype=dtype.as_numpy_dtype)
    return array


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END (TF Serving's ManagerState)
    error_code: str = "OK"
    error_message: str = ""


class ModelManager:
    """Which versions of which models are loaded; polls the base paths for new versions.

    Readers get the serving map (name -> {version: Servable}) that is current when they ask; a
    load or unload builds a new map and replaces the old one, so requests never see a
    half-loaded version, and a request that got an old version finishes on it.
    """

    def __init__(self, sources=(), models_dir=None, num_versions: int = 1,
                 poll_seconds: float = 1.0):
        if not sources and models_dir is None:
            raise ValueError("give model sources or a models directory")
        self._sources = {s.name: s for s in sources}
        self._models_dir = Path(models_dir) if models_dir is not None else None
        self._num_versions = max(1, num_versions)
        self.poll_seconds = poll_seconds
        self._serving = {}  # name -> {version: Servable}, replaced on change, never mutated
        self._states = {}  # name -> {version: VersionStatus}
        self._fingerprints = {}  # (name, version) -> fingerprint seen at the previous poll
        self._failed = {}  # (name, version) -> fingerprint whose load failed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # -- lifecycle

    def start(self) -> "ModelManager":
        """Loads what is there now (blocking, like TF Serving at start-up), then polls."""
        self.poll(initial=True)
        for source in self.sources():
            if not self._states.get(source.name):
                logger.warning("model %s: no versions under %s yet; it is served once one is "
                               "pushed there", source.name, source.base_path)
            for label, version in source.labels:
                if self.state(source.name, version) != "AVAILABLE":
                    logger.warning(
                        "model %s: label %r points at version %d, which is not available; "
                        "requests by this label fail until it is (TF Serving refuses this "
                        "without --allow_version_labels_for_unavailable_models)",
                        source.name, label, version)
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_forever, name="model-poller",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # never let one bad poll end hot reloading
                logger.exception("polling the model directories failed")

    # -- polling

    def sources(self) -> list:
        sources = dict(self._sources)
        if self._models_dir is not None and self._models_dir.is_dir():
            for path in sorted(self._models_dir.iterdir()):
                if path.is_dir() and not path.name.startswith(".") and path.name not in sources:
                    sources[path.name] = ModelSource(path.name, path, ("latest", self._num_versions))
        return list(sources.values())

    def poll(self, initial: bool = False) -> None:
        sources = self.sources()
        names = {source.name for source in sources}
        # A model directory removed from --models_dir: unload its versions.
        sources += [ModelSource(name, self._models_dir / name) for name in list(self._serving)
                    if name not in names and self._models_dir is not None]
        for source in sources:
            if self._stop.is_set():
                return
            try:
                self._sync(source, initial)
            except Exception:
                logger.exception("model %s: polling %s failed", source.name, source.base_path)

    def _sync(self, source: ModelSource, initial: bool) -> None:
        name = source.name
        present = _version_dirs(source.base_path)
        aspired = source.aspired(set(present))
        for version in sorted(aspired - set(self._serving.get(name, {})), reverse=True):
            if self._stop.is_set():
                return
            key = (name, version)
            fingerprint = _fingerprint(present[version])
            settled = initial or self._fingerprints.get(key) == fingerprint
            self._fingerprints[key] = fingerprint
            if not settled or self._failed.get(key) == fingerprint:
                continue  # still being written, or failed and unchanged since
            self._load(name, version, present[version], fingerprint)
        serving = self._serving.get(name, {})
        stale = set(serving) - aspired
        if stale and (aspired & set(serving) or not aspired):
            with self._lock:
                self._serving[name] = {v: s for v, s in serving.items() if v not in stale}
                for version in stale:
                    self._set_state(name, version, VersionStatus("END"))
            for version in sorted(stale):
                logger.info("model %s: unloaded version %d", name, version)

    def _load(self, name: str, version: int, path: Path, fingerprint) -> None:
        with self._lock:
            self._set_state(name, version, VersionStatus("LOADING"))
        logger.info("model %s: loading version %d from %s", name, version, path)
        started = time.monotonic()
        try:
            servable = Servable(name, version, path)
        except Exception as e:  # noqa: BLE001 - a broken SavedModel must not stop the server
            self._failed[(name, version)] = fingerprint
            code = _CODE_BY_NUMBER.get(getattr(e, "error_code", None), grpc.StatusCode.UNKNOWN)
            message = f"Failed to load version {version} of model {name} from {path}: " + (
                _tf_error(e).message if isinstance(e, tf.errors.OpError) else str(e))
            with self._lock:
                self._set_state(name, version, VersionStatus("END", code.name, message))
            logger.error("model %s: %s", name, message)
            return
        self._failed.pop((name, version), None)
        with self._lock:
            serving = dict(self._serving.get(name, {}))
            serving[version] = servable
            self._serving[name] = serving
            self._set_state(name, version, VersionStatus("AVAILABLE"))
        logger.info("model %s: version %d available (%.1f s)", name, version,
                    time.monotonic() - started)

    def _set_state(self, name: str, version: int, status: VersionStatus) -> None:
        states = dict(self._states.get(name, {}))
        states[version] = status
        self._states[name] = states

    # -- queries

    def state(self, name: str, version: int) -> str | None:
        status = self._states.get(name, {}).get(version)
        return status.state if status else None

    def available(self) -> dict:
        return {name: sorted(serving) for name, serving in self._serving.items()}

    def resolve(self, name: str, version: int | None = None,
                label: str | None = None) -> Servable:
        """The servable a request names: a version, a label, or (neither) the newest loaded."""
        if label is not None:
            source = next((s for s in self.sources() if s.name == name), None)
            labels = dict(source.labels) if source else {}
            if label not in labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = labels[label]
        serving = self._serving.get(name, {})
        if version is None:
            if not serving:
                raise not_found(f"Servable not found for request: Latest({name})")
            return serving[max(serving)]
        if version not in serving:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return serving[version]

    def resolve_spec(self, model_spec) -> Servable:
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version":
            return self.resolve(model_spec.name, version=model_spec.version.value)
        if choice == "version_label":
            return self.resolve(model_spec.name, label=model_spec.version_label)
        return self.resolve(model_spec.name)

    def status(self, name: str, version: int | None = None) -> get_model_status_pb2.GetModelStatusResponse:
        """TF Serving's GetModelStatusResponse: one version, or all versions newest first."""
        states = self._states.get(name, {})
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            versions = [version]
        else:
            if not states:
                raise not_found(f"Could not find any versions of model {name}")
            versions = sorted(states, reverse=True)
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in versions:
            entry = response.model_version_status.add(version=v)
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(states[v].state)
            entry.status.SetInParent()
            entry.status.error_code = grpc.StatusCode[states[v].error_code].value[0]
            entry.status.error_message = states[v].error_message
        return response


def _version_dirs(base_path: Path) -> dict:
    """{version: path} of the integer-named directories holding a saved_model.pb."""
    try:
        children = list(base_path.iterdir())
    except OSError:
        return {}
    versions = {}
    for child in children:
        if child.name.isdigit() and int(child.name) <= _INT64_MAX and (child / "saved_model.pb").is_file():
            versions[int(child.name)] = child
    return versions


def _fingerprint(path: Path) -> tuple:
    entries = []
    for file in sorted(path.rglob("*")):
        try:
            stat = file.stat()
        except OSError:
            continue
        entries.append((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


def metadata_response(servable: Servable) -> get_model_metadata_pb2.GetModelMetadataResponse:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in servable.signature_defs.items():
        signatures.signature_def[name].CopyFrom(signature_def)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
    return response


# --- batching (--enable_batching) ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """The BatchingParameters fields the local server implements, with TF Serving's defaults
    (those of `--enable_batching` without `--batching_parameters_file`)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)

    # Fields of BatchingParameters that are accepted but have no effect here.
    IGNORED = ("allowed_batch_sizes", "pad_variable_length_inputs", "enable_large_batch_splitting",
               "max_execution_batch_size")

    def __post_init__(self):
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"batching parameter {name} must be at least 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batching parameter batch_timeout_micros must not be negative, got "
                             f"{self.batch_timeout_micros}")

    @classmethod
    def from_parameters(cls, parameters, source: str = "BatchingParameters") -> "BatchingOptions":
        """From a TF Serving BatchingParameters message; unset fields keep TF Serving's defaults."""
        values = {field.name: getattr(parameters, field.name).value
                  for field in dataclasses.fields(cls) if parameters.HasField(field.name)}
        ignored = [field.name for field, _ in parameters.ListFields() if field.name in cls.IGNORED]
        if ignored:
            logger.warning("%s: %s not implemented by the local server; ignored", source,
                           ", ".join(ignored))
        return cls(**values)

    @classmethod
    def from_file(cls, path) -> "BatchingOptions":
        return cls.from_parameters(read_batching_parameters(path), str(path))


def queue_full(batches: int, limit: int) -> ServingError:
    """TF Serving's answer when a batching queue is full: UNAVAILABLE (HTTP 503)."""
    return ServingError(grpc.StatusCode.UNAVAILABLE,
                        "The batch scheduling queue to which this task was submitted is full; "
                        f"currently {batches} batches enqueued and max_enqueued_batches is {limit}")


def _batch_size(arrays: dict) -> int | None:
    """The inputs' common 0th dimension, or None when they have none (scalars, disagreeing or
    empty batches): such requests are not merged with others."""
    sizes = {array.shape[0] if array.ndim else None for array in arrays.values()}
    if len(sizes) != 1:
        return None
    size = sizes.pop()
    return size if size else None


class _Task:
    """One request's inputs waiting in a batch, and then its outputs or error."""

    __slots__ = ("arrays", "done", "error", "outputs", "size")

    def __init__(self, arrays: dict, size: int):
        self.arrays, self.size = arrays, size
        self.done = threading.Event()
        self.outputs = self.error = None


class _Batch:
    __slots__ = ("opened", "size", "tasks")

    def __init__(self):
        self.tasks, self.size, self.opened = [], 0, 0.0

    def add(self, task: _Task) -> None:
        if not self.tasks:
            self.opened = time.monotonic()
        self.tasks.append(task)
        self.size += task.size


class _BatchQueue:
    """The batches waiting for one servable version, signature, output filter and input layout;
    the last batch is the open one."""

    __slots__ = ("batches", "servable", "signature_name", "wanted")

    def __init__(self, servable, signature_name: str, wanted: tuple):
        self.servable, self.signature_name, self.wanted = servable, signature_name, wanted
        self.batches = collections.deque()


class Batcher:
    """Merges concurrent Predict calls into one model call, like TF Serving's `--enable_batching`.

    A request (already checked against its signature) joins the queue of its servable version,
    signature, output filter and input layout (dtype and shape after the batch dimension). The
    queue's last batch is open: a request joins it if the batch stays within `max_batch_size`
    examples; otherwise that batch is closed and a new one opened, unless the queue already
    holds `max_enqueued_batches` batches, in which case the request fails at once with
    UNAVAILABLE (HTTP 503), as in TF Serving. A batch is ready when it is closed, full, or
    `batch_timeout_micros` after its first request arrived; `num_batch_threads` threads run ready
    batches, oldest first: the inputs are concatenated, the model runs once, and each request
    gets its own slice of every output. With a timeout of 0, requests are merged only while all
    batch threads are busy.

    Differences from TF Serving: a request of more than `max_batch_size` examples runs on its
    own, unbatched, in its handler thread (TF Serving refuses it with INVALID_ARGUMENT "Task size
    ... is larger than maximum input batch size" unless large batch splitting is on), as does a
    request whose inputs have no common batch dimension; and if a merged call fails (say one
    request has an unreadable image), its requests are run again one by one, so each gets the
    answer it would have got alone (TF Serving fails the whole batch).
    """

    def __init__(self, options: BatchingOptions, execute):
        self.options = options
        self._execute = execute  # (servable, signature name, arrays, wanted) -> outputs
        self._queues = {}  # key -> _BatchQueue; a queue is removed when its last batch is taken
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = []

    def start(self) -> "Batcher":
        for index in range(self.options.num_batch_threads):
            thread = threading.Thread(target=self._work, name=f"batch-thread-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Fails the requests still queued (UNAVAILABLE) and ends the batch threads."""
        with self._cond:
            self._stopped = True
            waiting = [task for queue in self._queues.values() for batch in queue.batches
                       for task in batch.tasks]
            self._queues.clear()
            self._cond.notify_all()
        for task in waiting:
            task.error = ServingError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            task.done.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def pending(self) -> int:
        """Requests waiting in a batch that no batch thread has taken yet."""
        with self._cond:
            return sum(len(batch.tasks) for queue in self._queues.values()
                       for batch in queue.batches)

    def run(self, servable, signature_name: str, arrays: dict, wanted: tuple = ()) -> dict:
        """The request's outputs, computed in a batch with whatever requests join it."""
        size = _batch_size(arrays)
        if size is None or size > self.options.max_batch_size:
            return self._execute(servable, signature_name, arrays, wanted)
        layout = tuple((alias, array.dtype.str, array.shape[1:])
                       for alias, array in sorted(arrays.items()))
        key = (servable, signature_name, tuple(wanted), layout)
        task = _Task(arrays, size)
        with self._cond:
            if self._stopped:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _BatchQueue(servable, signature_name, tuple(wanted))
            if not queue.batches or queue.batches[-1].size + size > self.options.max_batch_size:
                if len(queue.batches) >= self.options.max_enqueued_batches:
                    raise queue_full(len(queue.batches), self.options.max_enqueued_batches)
                queue.batches.append(_Batch())
            queue.batches[-1].add(task)
            self._cond.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    queue, batch, wait = self._take_ready()
                    if batch is not None:
                        break
                    self._cond.wait(wait)
            self._process(queue, batch)

    def _take_ready(self) -> tuple:
        """(queue, batch, None) for the oldest ready batch, taken off its queue; else
        (None, None, seconds until the next batch times out, or None if none is waiting)."""
        now = time.monotonic()
        timeout = self.options.batch_timeout_micros / 1e6
        best, wait = None, None
        for key, queue in self._queues.items():
            batch = queue.batches[0]
            if (len(queue.batches) > 1 or batch.size >= self.options.max_batch_size
                    or now >= batch.opened + timeout):
                if best is None or batch.opened < best[2].opened:
                    best = (key, queue, batch)
            else:
                remaining = batch.opened + timeout - now
                wait = remaining if wait is None else min(wait, remaining)
        if best is None:
            return None, None, wait
        key, queue, batch = best
        queue.batches.popleft()
        if not queue.batches:
            del self._queues[key]
        return queue, batch, None

    def _process(self, queue: _BatchQueue, batch: _Batch) -> None:
        tasks = batch.tasks
        try:
            if len(tasks) > 1:
                try:
                    self._run_merged(queue, batch)
                    return
                except Exception as e:  # noqa: BLE001 - answered below, one request at a time
                    logger.debug("a batch of %d requests failed (%s); running them one by one",
                                 len(tasks), e)
            for task in tasks:
                try:
                    task.outputs = self._execute(queue.servable, queue.signature_name, task.arrays,
                                                 queue.wanted)
                except Exception as e:  # noqa: BLE001 - raised again in the request's thread
                    task.error = e
        finally:
            for task in tasks:
                task.done.set()

    def _run_merged(self, queue: _BatchQueue, batch: _Batch) -> None:
        tasks = batch.tasks
        arrays = {alias: np.concatenate([task.arrays[alias] for task in tasks])
                  for alias in tasks[0].arrays}
        outputs = self._execute(queue.servable, queue.signature_name, arrays, queue.wanted)
        for alias, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != batch.size:
                raise ServingError(grpc.StatusCode.INTERNAL, f"batched output {alias} has shape "
                                   f"{list(array.shape)}, not a batch of {batch.size}")
        offset = 0
        for task in tasks:
            task.outputs = {alias: array[offset:offset + task.size]
                            for alias, array in outputs.items()}
            offset += task.size


# --- JSON <-> tensors (TF Serving's REST encoding) -----------------------------------------


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, dict):
        return "Object"
    return "Null" if value is None else "Array"


class _JsonDecoder:
    def __init__(self, max_image_bytes: int):
        self.max_image_bytes = max_image_bytes

    def array(self, value, info) -> np.ndarray:
        """A JSON value (list nesting = dimensions) as an array of the TensorInfo's dtype."""
        dtype = tf.dtypes.as_dtype(info.dtype)
        shape = []
        probe = value
        while isinstance(probe, list):
            shape.append(len(probe))
            if not probe:
                break
            probe = probe[0]
        flat = []
        self._fill(value, 0, shape, dtype, flat)
        if dtype == tf.string:
            array = np.empty(len(flat), dtype=object)
            array[:] = flat
            return array.reshape(shape)
        try:
            return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(shape)
        except (OverflowError, ValueError) as e:
            raise invalid(f"JSON Value does not fit {dtype.name}: {e}") from None

    def _fill(self, value, level: int, shape: list, dtype, flat: list) -> None:
        if isinstance(value, list):
            if level >= len(shape):
                raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
            if len(value) != shape[level]:
                raise invalid(f"Encountered list at unexpected size: {len(value)} at level: "
                              f"{level} expected size: {shape[level]}")
            for item in value:
                self._fill(item, level + 1, shape, dtype, flat)
            return
        if level != len(shape):
            raise invalid(f"JSON Value: {_short(value)} found at incorrect level: {level + 1} in "
                          f"the JSON DOM. Expected at level: {len(shape)}")
        flat.append(self._scalar(value, dtype))

    def _scalar(self, value, dtype):
        if dtype == tf.string:
            if isinstance(value, str):
                data = value.encode("utf-8")
            elif isinstance(value, dict):
                if not _is_b64(value):
                    raise invalid(f"JSON Value: {_short(value)} expecting to be a base64 encoded "
                                  "string, as an object with a single key 'b64'")
                try:
                    data = base64.b64decode(value["b64"], validate=True)
                except (binascii.Error, ValueError):
                    raise invalid("Unable to base64 decode") from None
            else:
                raise self._type_error(value, dtype)
            if len(data) > self.max_image_bytes:
                raise too_large(f"a binary value of {len(data)} bytes exceeds the limit of "
                                f"{self.max_image_bytes} bytes (--max_image_bytes)")
            return data
        if dtype == tf.bool:
            if not isinstance(value, bool):
                raise self._type_error(value, dtype)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._type_error(value, dtype)
        if dtype.is_integer and not (isinstance(value, int) or float(value).is_integer()):
            raise self._type_error(value, dtype)
        return value

    @staticmethod
    def _type_error(value, dtype) -> ServingError:
        return invalid(f"JSON Value: {_short(value)} Type: {_json_type(value)} is not of "
                       f"expected type: {dtype.name}")


def _short(value, limit: int = 100) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _request_inputs(doc: dict, inputs_info, decoder: _JsonDecoder) -> tuple:
    """({alias: array}, row_format) from a predict request's "instances" or "inputs"."""
    if "instances" in doc and "inputs" in doc:
        raise invalid("Not formatted correctly expecting only one of 'inputs' or 'instances' "
                      "keys to exist")
    names = sorted(inputs_info)
    if "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid("Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid("No values in 'instances' array")
        as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
        if not as_objects and len(names) > 1:
            raise invalid("instances is a plain list, but expecting list of objects as multiple "
                          "input tensors required as per tensorinfo_map")
        columns = {name: [] for name in names}
        for index, item in enumerate(instances):
            item_is_object = isinstance(item, dict) and not _is_b64(item)
            if as_objects != item_is_object:
                raise invalid(f"Expecting {'object' if as_objects else 'value/list'} but got "
                              f"{'object' if item_is_object else 'value/list'} at item {index} "
                              "of input list")
            values = item if as_objects else {names[0]: item}
            for name, value in values.items():
                try:
                    if name not in inputs_info:
                        raise invalid(f"JSON object: does not have named input: {name}")
                    array = decoder.array(value, inputs_info[name])
                except ServingError as e:
                    e.message = (f"Failed to process element: {index} key: {name} of "
                                 f"'instances' list. Error: {e.message}")
                    raise
                if columns[name] and columns[name][0].shape != array.shape:
                    raise invalid(f"Failed to process element: {index} key: {name} of "
                                  f"'instances' list. Error: Expecting shape "
                                  f"{list(columns[name][0].shape)} but got: {list(array.shape)}")
                columns[name].append(array)
            if set(values) != set(names):
                raise invalid(f"Failed to process element: {index} of 'instances' list. JSON "
                              f"object: {_short(item)} keys must be equal to: {','.join(names)}")
        return {name: np.stack(arrays) for name, arrays in columns.items()}, True
    if "inputs" in doc:
        value = doc["inputs"]
        if not isinstance(value, dict) or _is_b64(value):
            if len(names) > 1:
                raise invalid("inputs is a plain value/list, but expecting an object as multiple "
                              "input tensors required as per tensorinfo_map")
            return {names[0]: decoder.array(value, inputs_info[names[0]])}, False
        arrays = {}
        for name in names:
            if name not in value:
                raise invalid(f"Missing named input: {name} in 'inputs' object.")
            arrays[name] = decoder.array(value[name], inputs_info[name])
        return arrays, False
    raise invalid("Missing 'inputs' or 'instances' key")


def _json_values(array: np.ndarray, name: str):
    """An output array as JSON values; strings as text, or {"b64": ...} for names ending in
    "_bytes" (TF Serving's rule)."""
    if array.dtype == object or array.dtype.kind == "S":
        as_b64 = name.endswith("_bytes")

        def convert(value):
            if isinstance(value, list):
                return [convert(v) for v in value]
            if as_b64:
                return {"b64": base64.b64encode(value).decode("ascii")}
            return value.decode("utf-8", errors="replace")

        return convert(array.tolist())
    return array.tolist()


def _response_json(outputs: dict, row_format: bool) -> dict:
    if not row_format:
        if len(outputs) == 1:
            (name, array), = outputs.items()
            return {"outputs": _json_values(array, name)}
        return {"outputs": {name: _json_values(array, name) for name, array in outputs.items()}}
    batch = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                          f"expecting: {batch}")
        batch = array.shape[0]
    columns = {name: _json_values(array, name) for name, array in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{name: values[i] for name, values in columns.items()}
                            for i in range(batch)]}


# --- REST --------------------------------------------------------------------------------


_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_MODEL_IN_PATH = re.compile(r"/v1/models/([^/:]+)", re.IGNORECASE)


class _Metrics:
    """Request counts, exported like TF Serving's :tensorflow:serving:request_count, and model
    calls (signature runs, batched or not) with the examples they processed, which only the
    local server exports (local_server_model_calls_total, local_server_model_call_examples_total)."""

    def __init__(self):
        self._counts = {}
        self._calls = {}  # (model, version, signature) -> [calls, examples]
        self._lock = threading.Lock()

    def count(self, model: str, status: str) -> None:
        with self._lock:
            key = (model, status)
            self._counts[key] = self._counts.get(key, 0) + 1

    def model_call(self, model: str, version: int, signature: str, examples: int) -> None:
        with self._lock:
            entry = self._calls.setdefault((model, version, signature), [0, 0])
            entry[0] += 1
            entry[1] += examples

    def request_counts(self) -> dict:
        """{(model, status): requests} so far."""
        with self._lock:
            return dict(self._counts)

    def model_calls(self) -> dict:
        """{(model, version, signature): (model calls, examples)} so far."""
        with self._lock:
            return {key: tuple(value) for key, value in self._calls.items()}

    def render(self, manager: ModelManager) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self._lock:
            counts = sorted(self._counts.items())
        for (model, status), count in counts:
            lines.append(f':tensorflow:serving:request_count{{model_name="{model}",'
                         f'status="{status}"}} {count}')
        lines.append("# TYPE :tensorflow:serving:model_versions_available gauge")
        for model, versions in sorted(manager.available().items()):
            lines.append(f':tensorflow:serving:model_versions_available{{model_name="{model}"}} '
                         f"{len(versions)}")
        calls = sorted(self.model_calls().items())
        for index, name in enumerate(("local_server_model_calls_total",
                                      "local_server_model_call_examples_total")):
            lines.append(f"# TYPE {name} counter")
            for (model, version, signature), values in calls:
                lines.append(f'{name}{{model_name="{model}",model_version="{version}",'
                             f'signature_name="{signature}"}} {values[index]}')
        return "\n".join(lines) + "\n"


class RestApi:
    """TF Serving's REST API over a ModelManager: (method, path, body) -> (HTTP status, JSON)."""

    def __init__(self, manager: ModelManager, max_image_bytes: int, predict=None):
        self.manager = manager
        self.decoder = _JsonDecoder(max_image_bytes)
        # (servable, signature name, inputs) -> outputs; LocalModelServer.predict batches.
        self._predict = predict or (lambda servable, name, inputs: servable.run(name, inputs))

    def handle(self, method: str, path: str, body: bytes) -> tuple:
        if not _API_PATH.fullmatch(path):
            raise not_found(f"No API at {path}; this server answers /v1/models/...")
        if method == "POST":
            match = _PREDICT_PATH.fullmatch(path)
        elif method == "GET":
            match = _STATUS_PATH.fullmatch(path)
        else:
            match = None
        if match is None:
            raise invalid(f"Malformed request: {method} {path}")
        name, version_text, label, action = match.groups()
        name = urllib.parse.unquote(name) if name else ""
        label = urllib.parse.unquote(label) if label else None
        version = None
        if version_text:
            version = int(version_text)
            if version > _INT64_MAX:
                raise invalid(f"Failed to convert version: {version_text} to numeric.")
        if method == "POST":
            if action.lower() != "predict":
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f":{action} is not served by the local server; use :predict")
            return name, self.predict(name, version, label, body)
        if not name:
            raise invalid("Missing model name in request.")
        if action:
            servable = self.manager.resolve(name, version, label)
            return name, _metadata_json(metadata_response(servable))
        # As in TF Serving, a status request by label reports every version of the model.
        return name, json_format.MessageToDict(self.manager.status(name, version),
                                               including_default_value_fields=True)

    def predict(self, name, version, label, body: bytes) -> dict:
        if not body:
            raise invalid("JSON Parse error: The document is empty")
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError
            raise invalid(f"JSON Parse error: {e}") from None
        if not isinstance(doc, dict):
            raise invalid(f"JSON Value: {_short(doc)} Is not object")
        signature_name = doc.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid("'signature_name' key must be a string value.")
        servable = self.manager.resolve(name, version, label)
        signature_name, signature_def = servable.signature(signature_name)
        inputs, row_format = _request_inputs(doc, signature_def.inputs, self.decoder)
        outputs = self._predict(servable, signature_name, inputs)
        return _response_json(outputs, row_format)


def _metadata_json(response) -> dict:
    """TF Serving's REST metadata JSON: model_spec and metadata.signature_def (a SignatureDefMap)."""
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
    options = {"including_default_value_fields": True, "preserving_proto_field_name": True}
    return {
        "model_spec": json_format.MessageToDict(response.model_spec, **options),
        "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(signatures, **options)},
    }


class _RestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "text-recognizer-local-serving/1"
    timeout = 120  # seconds a connection may sit idle (or trickle a body) before it is dropped
    # TCP_NODELAY: the headers and the body go out in two writes, and with Nagle's algorithm the
    # body waits for the client's (delayed) ACK of the headers, ~40 ms on Linux per keep-alive
    # request (benchmarks/serving_benchmark.py showed it).
    disable_nagle_algorithm = True
    server: "_RestServer"

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def log_message(self, format, *args):
        logger.debug("%s %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        path = urllib.parse.urlsplit(self.path).path
        named = _MODEL_IN_PATH.match(path)
        model = urllib.parse.unquote(named.group(1)) if named else ""
        try:
            if method == "GET" and owner.metrics_path and path == owner.metrics_path:
                self._send(200, owner.metrics.render(owner.manager).encode(), "text/plain")
                return
            body = self._read_body(owner.max_request_bytes)
            _, payload = owner.rest.handle(method, path, body)
            status = 200
            owner.metrics.count(model, "OK")
        except ServingError as e:
            status, payload = e.http_status, {"error": e.message}
            owner.metrics.count(model, e.code.name)
        except Exception as e:  # a bug must cost one request, not the server
            logger.exception("%s %s failed", method, path)
            status, payload = 500, {"error": f"Internal error: {type(e).__name__}: {e}"}
            owner.metrics.count(model, "INTERNAL")
        self._send(status, json.dumps(payload, indent=1).encode(), "application/json")

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "chunked request bodies are not supported; send Content-Length",
                               http_status=411)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise invalid("bad Content-Length header") from None
        if length < 0:
            self.close_connection = True
            raise invalid("bad Content-Length header")
        if length > limit:
            self.close_connection = True
            if length <= _DRAIN_LIMIT:  # read it anyway, so the client gets to see the 413
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, MiB))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            raise too_large(f"request body of {length} bytes exceeds the limit of {limit} bytes "
                            "(--max_request_bytes)")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _RestServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, owner):
        self.owner = owner
        super().__init__(address, _RestHandler)

    def handle_error(self, request, client_address):
        logger.debug("connection from %s ended with an error: %s", client_address,
                     sys.exc_info()[1])


# --- gRPC --------------------------------------------------------------------------------


def _grpc_call(context, metrics, model: str, function):
    try:
        return function()
    except ServingError as e:
        metrics.count(model, e.code.name)
        message = e.message
        code = e.code
    except Exception as e:  # a bug must cost one request, not the server
        logger.exception("gRPC request failed")
        code, message = grpc.StatusCode.INTERNAL, f"Internal error: {type(e).__name__}: {e}"
    context.abort(code, message)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, owner: "LocalModelServer"):
        self.owner = owner

    def Predict(self, request, context):
        return _grpc_call(context, self.owner.metrics, request.model_spec.name,
                          lambda: self._predict(request))

    def _predict(self, request):
        servable = self.owner.manager.resolve_spec(request.model_spec)
        signature_name, signature_def = servable.signature(request.model_spec.signature_name,
                                                           grpc_api=True)
        inputs = {}
        for alias, proto in request.inputs.items():
            info = signature_def.inputs.get(alias)
            if info is not None and proto.dtype != info.dtype:
                raise invalid(f"input {alias}: expects {tf.dtypes.as_dtype(info.dtype).name} but "
                              f"{tf.dtypes.as_dtype(proto.dtype).name} is provided")
            try:
                inputs[alias] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                raise invalid(f"input {alias}: not a valid TensorProto ({e})") from None
            if inputs[alias].dtype == object:
                largest = max((len(v) for v in inputs[alias].flat), default=0)
                if largest > self.owner.max_image_bytes:
                    raise too_large(f"a binary value of {largest} bytes exceeds the limit of "
                                    f"{self.owner.max_image_bytes} bytes (--max_image_bytes)")
        outputs = self.owner.predict(servable, signature_name, inputs,
                                     tuple(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for alias, array in outputs.items():
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(array))
        self.owner.metrics.count(servable.name, "OK")
        return response

    def GetModelMetadata(self, request, context):
        return _grpc_call(context, self.owner.metrics, request.model_spec.name,
                          lambda: self._metadata(request))

    def _metadata(self, request):
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid(f"Metadata field {field} is not supported")
        response = metadata_response(self.owner.manager.resolve_spec(request.model_spec))
        self.owner.metrics.count(request.model_spec.name, "OK")
        return response


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, owner: "LocalModelServer"):
        self.owner = owner

    def GetModelStatus(self, request, context):
        def status():
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            spec = request.model_spec
            version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
            return self.owner.manager.status(spec.name, version)

        return _grpc_call(context, self.owner.metrics, request.model_spec.name, status)


# --- the server --------------------------------------------------------------------------


class LocalModelServer:
    """REST and gRPC endpoints over a ModelManager. Port 0 picks a free port (see .rest_port).

    With `batching` (BatchingOptions), Predict calls go through a Batcher; otherwise each runs
    the model on its own, in its handler thread. `metrics` counts requests and model calls."""

    def __init__(self, manager: ModelManager, host: str = "127.0.0.1", rest_port: int = 8501,
                 grpc_port: int = 8500, max_request_bytes: int = 32 * MiB,
                 max_image_bytes: int = 10 * MiB, metrics_path: str | None = None,
                 grpc_workers: int = 8, batching: BatchingOptions | None = None):
        self.manager = manager
        self.host = host
        self.max_request_bytes = max_request_bytes
        self.max_image_bytes = max_image_bytes
        self.metrics_path = metrics_path
        self.metrics = _Metrics()
        self.batching = batching
        self.batcher = Batcher(batching, self._execute) if batching is not None else None
        self.rest = RestApi(manager, max_image_bytes, self.predict)
        self._requested_ports = (rest_port, grpc_port)
        self._grpc_workers = grpc_workers
        self._http = None
        self._http_thread = None
        self._grpc = None
        self.rest_port = None
        self.grpc_port = None

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def predict(self, servable: Servable, signature_name: str, inputs: dict,
                output_filter: tuple = ()) -> dict:
        """Checks a Predict request's inputs and runs it (in a batch when batching is on)."""
        signature_name, arrays, wanted = servable.prepare(signature_name, inputs, output_filter)
        if self.batcher is not None:
            return self.batcher.run(servable, signature_name, arrays, wanted)
        return self._execute(servable, signature_name, arrays, wanted)

    def _execute(self, servable: Servable, signature_name: str, arrays: dict, wanted=()) -> dict:
        try:
            return servable.execute(signature_name, arrays, wanted)
        finally:
            examples = max((array.shape[0] for array in arrays.values() if array.ndim), default=1)
            self.metrics.model_call(servable.name, servable.version, signature_name, examples)

    def start(self) -> "LocalModelServer":
        self.manager.start()
        if self.batcher is not None:
            self.batcher.start()
        rest_port, grpc_port = self._requested_ports
        self._http = _RestServer((self.host, rest_port), self)
        self.rest_port = self._http.server_address[1]
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._grpc_workers),
            options=[("grpc.max_receive_message_length", self.max_request_bytes),
                     ("grpc.max_send_message_length", -1),
                     ("grpc.so_reuseport", 0)],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self), self._grpc)
        try:
            self.grpc_port = self._grpc.add_insecure_port(f"{self.host}:{grpc_port}")
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            self._http.server_close()
            if self.batcher is not None:
                self.batcher.stop()
            self.manager.stop()
            raise OSError(f"cannot listen for gRPC on {self.host}:{grpc_port}")
        self._grpc.start()
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="rest-server",
                                             daemon=True)
        self._http_thread.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self.batcher is not None:
            self.batcher.stop()
        self.manager.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving.local_server",
        description="Serve pushed models over TF Serving's REST and gRPC APIs without Docker. "
        "Production uses TensorFlow Serving (serving/docker-compose.yml); this server exists so "
        "the same clients and contract tests run on machines without it.",
    )
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument("--model_config_file",
                        help="TF Serving ModelServerConfig text proto (serving/config/models.config)")
    models.add_argument("--models_dir",
                        help="serve every model directory found here (rescanned while running), "
                        "each with its --num_versions newest versions")
    parser.add_argument("--model_base_path_root",
                        help="with --model_config_file: the local directory that base paths under "
                        f"{CONTAINER_MODELS_DIR} (the container's mount) and relative base paths "
                        "are read from, e.g. artifacts/serving")
    parser.add_argument("--num_versions", type=int, default=1,
                        help="with --models_dir: versions of each model to keep loaded (1)")
    parser.add_argument("--rest_port", "--rest_api_port", type=int, default=8501,
                        help="REST port (8501); 0 picks a free one")
    parser.add_argument("--grpc_port", "--port", type=int, default=8500,
                        help="gRPC port (8500); 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (127.0.0.1; 0.0.0.0 for all interfaces)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between looks for new versions (1); 0 looks only at start-up")
    parser.add_argument("--max_request_bytes", type=int, default=32 * MiB,
                        help="largest REST body / gRPC message accepted (32 MiB); larger: 413")
    parser.add_argument("--max_image_bytes", type=int, default=10 * MiB,
                        help="largest single binary value, e.g. one image (10 MiB); larger: 413")
    parser.add_argument("--monitoring_config_file",
                        help="TF Serving MonitoringConfig; serves request counts at its "
                        "Prometheus path when enabled")
    parser.add_argument("--enable_batching", nargs="?", const=True, default=False, type=_flag,
                        metavar="true|false",
                        help="merge concurrent Predict calls for the same model version and "
                        "signature into one model call (TF Serving's flag; see "
                        "--batching_parameters_file)")
    parser.add_argument("--batching_parameters_file",
                        help="TF Serving BatchingParameters text proto "
                        "(serving/config/batching.config): max_batch_size, batch_timeout_micros, "
                        "max_enqueued_batches, num_batch_threads; without it, TF Serving's "
                        "defaults (1000, 0, 10, one thread per CPU)")
    parser.add_argument("--grpc_max_threads", type=int, default=8,
                        help="threads answering gRPC calls (8); at most this many gRPC Predict "
                        "calls are in flight, and so can be batched together")
    parser.add_argument("--allow_version_labels_for_unavailable_models", action="store_true",
                        help="accepted for compatibility with TF Serving's command line; the "
                        "local server always allows such labels")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def _flag(text: str) -> bool:
    """A boolean flag's value as TF Serving takes it: --flag, --flag=true, --flag=false."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_server(argv=None) -> LocalModelServer:
    """A (not yet started) server from command-line arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    for flag in ("rest_port", "grpc_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            parser.error(f"--{flag}: {getattr(args, flag)} is not a port number")
    if args.file_system_poll_wait_seconds < 0:
        parser.error("--file_system_poll_wait_seconds must not be negative")
    if args.max_request_bytes <= 0 or args.max_image_bytes <= 0:
        parser.error("--max_request_bytes and --max_image_bytes must be positive")
    if args.model_base_path_root and not args.model_config_file:
        parser.error("--model_base_path_root goes with --model_config_file")
    if args.batching_parameters_file and not args.enable_batching:
        parser.error("--batching_parameters_file is set without --enable_batching (TF Serving "
                     "refuses this too)")
    if args.grpc_max_threads < 1:
        parser.error("--grpc_max_threads must be at least 1")
    try:
        if args.model_config_file:
            manager = ModelManager(
                sources_from_config(args.model_config_file, args.model_base_path_root),
                poll_seconds=args.file_system_poll_wait_seconds)
        else:
            if not Path(args.models_dir).is_dir():
                parser.error(f"--models_dir: {args.models_dir} is not a directory")
            manager = ModelManager(models_dir=args.models_dir, num_versions=args.num_versions,
                                   poll_seconds=args.file_system_poll_wait_seconds)
        metrics_path = None
        if args.monitoring_config_file:
            prometheus = read_monitoring_config(args.monitoring_config_file).prometheus_config
            if prometheus.enable:
                metrics_path = prometheus.path or "/monitoring/prometheus/metrics"
        batching = None
        if args.enable_batching:
            batching = (BatchingOptions.from_file(args.batching_parameters_file)
                        if args.batching_parameters_file else BatchingOptions())
    except ValueError as e:  # includes ConfigFileError
        parser.error(str(e))
    return LocalModelServer(
        manager, host=args.host, rest_port=args.rest_port, grpc_port=args.grpc_port,
        max_request_bytes=args.max_request_bytes, max_image_bytes=args.max_image_bytes,
        metrics_path=metrics_path, grpc_workers=args.grpc_max_threads, batching=batching)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.DEBUG if "--verbose" in argv else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    server = build_server(argv)
    try:
        server.start()
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    models = ", ".join(f"{name} {versions}" for name, versions in server.manager.available().items())
    batching = server.batching
    batching = (f"batching up to {batching.max_batch_size} examples, {batching.batch_timeout_micros} "
                f"us timeout, {batching.num_batch_threads} threads, {batching.max_enqueued_batches} "
                "batches queued" if batching else "no batching")
    print(f"Local model server (a stand-in for TF Serving) on REST {server.rest_url} and gRPC "
          f"{server.grpc_target}; serving {models or 'no models yet'}; {batching}", flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
