"""The model server that test_client.py, test_app.py and test_web_page.py talk to.

`model_server` is the real local server (serving.local_server), started once per session on free
127.0.0.1 ports over the contract models (serving.contract_models: untrained tiny line models)
with their labels: `lines` versions 1 and 2 (stable -> 1, canary -> 2), plus `broken`, whose only
version fails to load (state END), for the not-ready cases. `served` is that server seen from one
test: what it did since the test began, read from its metrics.
"""

from pathlib import Path

import pytest

from data import locations

# Tests run on the embedded samples unless they say otherwise: without this, the data location
# rule would find ../shared/data and train every pipeline test on real EMNIST and Brown. Tests of
# real data name their folders themselves.
locations.SHARED_DATA = Path("/nonexistent/shared/data")

SERVING_SIGNATURE = "serving_default"


class Served:
    """The model server, and what it did since this object was made."""

    def __init__(self, server):
        self.server = server
        self.rest_url = server.rest_url
        self.grpc_address = server.grpc_target
        self._calls = server.metrics.model_calls()
        self._requests = sum(server.metrics.request_counts().values())

    def calls(self, model: str = "lines") -> dict:
        """{version: (model calls, images)} of the model's serving signature since then."""
        result = {}
        for (name, version, signature), (
            calls,
            images,
        ) in self.server.metrics.model_calls().items():
            before = self._calls.get((name, version, signature), (0, 0))
            if name == model and signature == SERVING_SIGNATURE and calls != before[0]:
                result[version] = (calls - before[0], images - before[1])
        return result

    def requests(self) -> int:
        """Predict and metadata requests, and refused requests of any kind, since then."""
        return sum(self.server.metrics.request_counts().values()) - self._requests


@pytest.fixture(scope="session")
def model_server(tmp_path_factory):
    from serving.contract_models import write_contract_models
    from serving.local_server import (
        LocalModelServer,
        ModelManager,
        ModelSource,
        sources_from_config,
    )

    root = tmp_path_factory.mktemp("served_models")
    write_contract_models(root)
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    sources = [s for s in sources_from_config(root / "models.config", root) if s.name == "lines"]
    sources.append(ModelSource("broken", root / "broken"))
    server = LocalModelServer(ModelManager(sources, poll_seconds=0), rest_port=0, grpc_port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def served(model_server) -> Served:
    return Served(model_server)
