"""The local server's Prometheus metrics (at the MonitoringConfig's path on the REST port).

Rendered here rather than with prometheus_client (only a transitive dependency) because TF
Serving's names are kept exactly (`:tensorflow:serving:request_count`, a counter without the
`_total` suffix prometheus_client would add). Two rules keep the page safe to expose: a model
name becomes a label value only if the server knows the model (configured, or found in
--models_dir), anything else is counted under UNKNOWN_MODEL, so a client cannot grow the page
(and the server's memory) by inventing names; and label values are escaped as the exposition
format requires (backslash, double quote, newline), so no name can inject a line.
"""

import threading

UNKNOWN_MODEL = "_unknown"


def label(value) -> str:
    """A label value escaped per the Prometheus text exposition format."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**values) -> str:
    return "{" + ",".join(f'{name}="{label(value)}"' for name, value in values.items()) + "}"


class Metrics:
    """Request counts, exported like TF Serving's :tensorflow:serving:request_count, and model
    calls (signature runs, batched or not) with the examples they processed, which only the
    local server exports (local_server_model_calls_total, local_server_model_call_examples_total).
    `known_models()` returns the model names that may be labels (all, when not given)."""

    def __init__(self, known_models=None):
        self._known_models = known_models
        self._counts = {}
        self._calls = {}  # (model, version, signature) -> [calls, examples]
        self._lock = threading.Lock()

    def count(self, model: str, status: str) -> None:
        if self._known_models is not None and model not in self._known_models():
            model = UNKNOWN_MODEL
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

    def render(self, manager) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        for (model, status), count in sorted(self.request_counts().items()):
            lines.append(
                f":tensorflow:serving:request_count"
                f"{_labels(model_name=model, status=status)} {count}"
            )
        lines.append("# TYPE :tensorflow:serving:model_versions_available gauge")
        for model, versions in sorted(manager.available().items()):
            lines.append(
                f":tensorflow:serving:model_versions_available"
                f"{_labels(model_name=model)} {len(versions)}"
            )
        calls = sorted(self.model_calls().items())
        for index, name in enumerate(
            ("local_server_model_calls_total", "local_server_model_call_examples_total")
        ):
            lines.append(f"# TYPE {name} counter")
            for (model, version, signature), values in calls:
                labels = _labels(model_name=model, model_version=version, signature_name=signature)
                lines.append(f"{name}{labels} {values[index]}")
        return "\n".join(lines) + "\n"
