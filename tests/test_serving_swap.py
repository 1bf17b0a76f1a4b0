"""Version swaps under load on the local server: warm (the export's warm-up requests replayed
before a version is AVAILABLE), without a failed request, and an instant fallback when the
newest version is removed with `latest {num_versions: 2}`.

Load is bounded: a few client threads on 127.0.0.1, each at most MAX_REQUESTS requests within
TIMEOUT seconds.
"""

import shutil
import threading
import time

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc
from test_serving_fuzz import OK_PNG

from serving.contract_models import template_model
from serving.local_server import LocalModelServer, ModelManager, ModelSource
from trainer.export import WARMUP_FILE

CLIENTS = 3
MAX_REQUESTS = 5000  # per client
TIMEOUT = 60


def push(base, version: int, source=None) -> None:
    """As a deployment should: copy beside the model, then rename into place."""
    staging = base / f".incoming-{version}"
    shutil.copytree(source or template_model(), staging)
    staging.rename(base / str(version))


class Load:
    """CLIENTS threads sending gRPC Predict requests for the newest version until stopped (or
    their bound is reached); records each answer's version, or the error."""

    def __init__(self, target: str, model: str):
        self.versions: list = []
        self.errors: list = []
        self.states: list = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(target, model)) for _ in range(CLIENTS)
        ]

    def _work(self, target: str, model: str) -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([OK_PNG]))
        deadline = time.monotonic() + TIMEOUT
        with grpc.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(MAX_REQUESTS):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    response = stub.Predict(request, timeout=TIMEOUT)
                    self.versions.append(response.model_spec.version.value)
                except grpc.RpcError as e:
                    self.errors.append(f"{e.code()}: {e.details()}")

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def swap_server(tmp_path):
    base = tmp_path / "swap"
    base.mkdir()
    push(base, 1)
    manager = ModelManager([ModelSource("swap", base, ("latest", 2))], poll_seconds=0.1)
    server = LocalModelServer(manager, rest_port=0, grpc_port=0).start()
    yield server, base
    server.stop()


def test_a_version_pushed_under_load_is_warmed_up_and_swapped_in_without_a_failure(swap_server):
    server, base = swap_server
    manager = server.manager
    assert manager.warmup_requests[("swap", 1)] == 1  # replayed at start-up too
    with Load(server.grpc_target, "swap") as load:
        wait_until(lambda: len(load.versions) >= 10, "steady load")
        push(base, 2)
        while manager.state("swap", 2) != "AVAILABLE":  # version 1 serves until then
            assert manager.state("swap", 1) == "AVAILABLE"
            assert manager.resolve("swap").version == 1
            time.sleep(0.01)
        # Replayed while LOADING, before the version could be resolved by any request.
        assert manager.warmup_requests[("swap", 2)] == 1
        count = len(load.versions)
        wait_until(lambda: len(load.versions) >= count + 10, "requests on the new version")
    assert load.errors == []
    assert set(load.versions) == {1, 2} and load.versions[-1] == 2
    assert manager.available() == {"swap": [1, 2]}  # latest 2: the previous one stays loaded


def test_removing_the_newest_version_falls_back_without_a_gap(swap_server):
    server, base = swap_server
    push(base, 2)
    wait_until(lambda: server.manager.available() == {"swap": [1, 2]}, "both versions")
    with Load(server.grpc_target, "swap") as load:
        wait_until(lambda: len(load.versions) >= 10, "steady load")
        shutil.rmtree(base / "2")  # a rollback
        wait_until(lambda: server.manager.available() == {"swap": [1]}, "version 2 unloaded")
        count = len(load.versions)
        wait_until(lambda: len(load.versions) >= count + 10, "requests after the rollback")
    assert load.errors == []
    assert load.versions[-1] == 1 and 2 in load.versions
    assert server.manager.state("swap", 1) == "AVAILABLE"


def test_a_version_whose_warm_up_fails_never_becomes_available(swap_server, tmp_path):
    """As in TF Serving, a failing warm-up request fails the load: the old version serves on."""
    server, base = swap_server
    broken = tmp_path / "broken_warmup"
    shutil.copytree(template_model(), broken)
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([b"not an image"]))
    with tf.io.TFRecordWriter(str(broken / WARMUP_FILE)) as writer:
        writer.write(log.SerializeToString())
    push(base, 2, broken)
    wait_until(lambda: server.manager.state("swap", 2) == "END", "the failed load")
    (status,) = server.manager.status("swap", 2).model_version_status
    assert "Failed to load version 2 of model swap" in status.status.error_message
    assert "Unknown image file format" in status.status.error_message
    assert server.manager.resolve("swap").version == 1
