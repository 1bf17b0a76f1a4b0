"""The local server's Prometheus metrics (at the MonitoringConfig's path on the REST port)."""

import threading


class Metrics:
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

    def render(self, manager) -> str:
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
