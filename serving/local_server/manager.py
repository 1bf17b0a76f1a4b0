"""The model manager: which versions of which models are loaded, and hot reload.

Like TF Serving it polls the model base paths (the push layout, `common.push_layout`) every
`poll_seconds`, loads a new version in the background while the loaded ones keep serving, and
swaps it in atomically once loaded; the version policy decides which versions stay loaded, and
old versions are unloaded only once a version the policy wants is available. A version directory
is loaded once its files have stopped changing between two polls, so a non-atomic copy is not
read half-written; a version that fails to load is reported (state END with the error) and
retried when its files change.

Swaps are warm: a new version replays its SavedModel warm-up requests
(`assets.extra/tf_serving_warmup_requests`, see `Servable.warm_up`) before it becomes AVAILABLE,
and the versions serving until then keep serving until it is. When the newest version's
directory is removed (a rollback), requests fall back at the next poll to the newest version
still loaded, without a gap, if the policy kept one (`latest {num_versions: 2}`); with
`num_versions: 1` the removed version keeps serving until the older one has been loaded again.
"""

import dataclasses
import logging
import threading
import time
from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2

from common import push_layout
from serving.errors import CODE_BY_NUMBER, ServingError, invalid, not_found
from serving.local_server.models import INT64_MAX, ModelSource, Servable, tf_error

logger = logging.getLogger("serving.local_server")


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

    def __init__(
        self, sources=(), models_dir=None, num_versions: int = 1, poll_seconds: float = 1.0
    ):
        if not sources and models_dir is None:
            raise ValueError("give model sources or a models directory")
        self._sources = {s.name: s for s in sources}
        self._models_dir = Path(models_dir) if models_dir is not None else None
        self._num_versions = max(1, num_versions)
        self.poll_seconds = poll_seconds
        self._serving: dict = {}  # name -> {version: Servable}, replaced on change, never mutated
        self._states: dict = {}  # name -> {version: VersionStatus}
        self._fingerprints: dict = {}  # (name, version) -> fingerprint seen at the previous poll
        self._failed: dict = {}  # (name, version) -> fingerprint whose load failed
        self.warmup_requests: dict = {}  # (name, version) -> warm-up requests replayed when loaded
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> "ModelManager":
        """Loads what is there now (blocking, like TF Serving at start-up), then polls."""
        self.poll(initial=True)
        for source in self.sources():
            if not self._states.get(source.name):
                logger.warning(
                    "model %s: no versions under %s yet; it is served once one is pushed there",
                    source.name,
                    source.base_path,
                )
            for label, version in source.labels:
                if self.state(source.name, version) != "AVAILABLE":
                    logger.warning(
                        "model %s: label %r points at version %d, which is not available; "
                        "requests by this label fail until it is (TF Serving refuses this "
                        "without --allow_version_labels_for_unavailable_models)",
                        source.name,
                        label,
                        version,
                    )
        if self.poll_seconds > 0:
            thread = threading.Thread(target=self._poll_forever, name="model-poller", daemon=True)
            thread.start()
            self._thread = thread
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
                    sources[path.name] = ModelSource(
                        path.name, path, ("latest", self._num_versions)
                    )
        return list(sources.values())

    def poll(self, initial: bool = False) -> None:
        sources = self.sources()
        names = {source.name for source in sources}
        # A model directory removed from --models_dir: unload its versions.
        sources += [
            ModelSource(name, self._models_dir / name)
            for name in list(self._serving)
            if name not in names and self._models_dir is not None
        ]
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
            warmed_up = servable.warm_up()  # before it becomes AVAILABLE, as in TF Serving
        except Exception as e:
            self._failed[(name, version)] = fingerprint
            code = CODE_BY_NUMBER.get(getattr(e, "error_code", None), grpc.StatusCode.UNKNOWN)
            message = f"Failed to load version {version} of model {name} from {path}: " + (
                e.message
                if isinstance(e, ServingError)
                else tf_error(e).message
                if isinstance(e, tf.errors.OpError)
                else str(e)
            )
            with self._lock:
                self._set_state(name, version, VersionStatus("END", code.name, message))
            logger.error("model %s: %s", name, message)
            return
        self._failed.pop((name, version), None)
        self.warmup_requests[(name, version)] = warmed_up
        with self._lock:
            serving = dict(self._serving.get(name, {}))
            serving[version] = servable
            self._serving[name] = serving
            self._set_state(name, version, VersionStatus("AVAILABLE"))
        logger.info(
            "model %s: version %d available (%.1f s, %d warm-up requests)",
            name,
            version,
            time.monotonic() - started,
            warmed_up,
        )

    def _set_state(self, name: str, version: int, status: VersionStatus) -> None:
        states = dict(self._states.get(name, {}))
        states[version] = status
        self._states[name] = states

    # -- queries

    def state(self, name: str, version: int) -> str | None:
        status = self._states.get(name, {}).get(version)
        return status.state if status else None

    def model_names(self) -> set:
        """The models this server knows: configured, or found (with versions) in models_dir."""
        return set(self._sources) | set(self._states)

    def available(self) -> dict:
        return {name: sorted(serving) for name, serving in self._serving.items()}

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
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

    def status(
        self, name: str, version: int | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
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
    """{version: path} of the push layout's versions under `base_path` that hold a
    saved_model.pb (TF Serving's versions are int64)."""
    try:
        versions = push_layout.list_versions(base_path)
    except tf.errors.OpError:  # removed while being listed
        return {}
    paths = {v: Path(push_layout.version_dir(base_path, v)) for v in versions if v <= INT64_MAX}
    return {v: path for v, path in paths.items() if (path / "saved_model.pb").is_file()}


def _fingerprint(path: Path) -> tuple:
    entries = []
    for file in sorted(path.rglob("*")):
        try:
            stat = file.stat()
        except OSError:
            continue
        entries.append((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
