"""Server-side batching in the local server (`--enable_batching`), over REST and gRPC.

Local server only (TF Serving's batching is its own): concurrent single-image requests are merged
into fewer model calls and each caller gets exactly what it gets unbatched; a full queue answers
UNAVAILABLE / HTTP 503 as TF Serving does; requests larger than max_batch_size run on their own;
a bad image fails only its own request; with batching off every request is one model call. Model
calls are read from the server's metrics (LocalModelServer.metrics, and the Prometheus page).
"""

import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.contract_models import write_contract_models
from serving.local_server import (
    Batcher,
    BatchingOptions,
    LocalModelServer,
    ModelManager,
    ServingError,
    build_server,
    sources_from_config,
)

TIMEOUT = 60
WORDS = ["ab", "Cde", "xy z", "Q7", "mn", "Hello", "a b c", "Zz9"]
MODEL = ("lines", 2, "serving_default")  # what an unversioned request runs
METRICS_PATH = "/monitoring/prometheus/metrics"
CONFIG_DIR = Path(__file__).resolve().parents[1] / "serving" / "config"
BATCHING_CONFIG = str(CONFIG_DIR / "batching.config")


def line_png(text: str, width: int = 112) -> bytes:
    image = Image.new("L", (width, 28), "white")
    ImageDraw.Draw(image).text((3, 8), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


IMAGES = [line_png(word, 100 + 6 * i) for i, word in enumerate(WORDS)]


# --- servers and requests ------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("batching_models")
    write_contract_models(root)
    return root


def start_server(models, batching: BatchingOptions | None) -> LocalModelServer:
    sources = [
        s for s in sources_from_config(models / "models.config", models) if s.name == "lines"
    ]
    return LocalModelServer(
        ModelManager(sources, poll_seconds=0),
        rest_port=0,
        grpc_port=0,
        metrics_path=METRICS_PATH,
        grpc_workers=16,
        batching=batching,
    ).start()


@pytest.fixture(scope="module")
def unbatched(models):
    server = start_server(models, None)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batched(models):
    """Batches of up to 8, waiting up to 5 s to fill: 8 concurrent requests make one batch."""
    server = start_server(
        models,
        BatchingOptions(
            max_batch_size=len(WORDS),
            batch_timeout_micros=5_000_000,
            max_enqueued_batches=4,
            num_batch_threads=1,
        ),
    )
    yield server
    server.stop()


def rest_predict(server, images, model="lines") -> tuple:
    """(HTTP status, JSON answer) of a REST predict of `images`."""
    body = json.dumps({"instances": [{"b64": base64.b64encode(i).decode()} for i in images]})
    request = urllib.request.Request(
        f"{server.rest_url}/v1/models/{model}:predict",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def grpc_predict(server, images) -> tuple:
    """("OK", rows) or (status code name, details) of a gRPC Predict of `images`."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "lines"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
    with grpc.insecure_channel(server.grpc_target) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                request, timeout=TIMEOUT
            )
        except grpc.RpcError as error:
            return error.code().name, error.details()
    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    return "OK", [
        {
            "text": outputs["text"][i].decode(),
            "confidence": float(outputs["confidence"][i]),
            "decoded": outputs["decoded"][i].tolist(),
        }
        for i in range(len(images))
    ]


def predict(kind: str, server, images) -> tuple:
    """(status, rows or error) over REST ("rest") or gRPC ("grpc"); status 200 / "OK" on success."""
    if kind == "grpc":
        return grpc_predict(server, images)
    status, body = rest_predict(server, images)
    return status, body.get("predictions", body.get("error"))


def concurrently(calls: list) -> list:
    """Runs the calls at once, each in its own thread; their results in order."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index):
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    return results


def calls(server) -> tuple:
    """(model calls, examples) of an unversioned Predict so far."""
    return server.metrics.model_calls().get(MODEL, (0, 0))


def assert_same_rows(got: list, expected: list) -> None:
    assert [r["text"] for r in got] == [r["text"] for r in expected]
    assert [r["decoded"] for r in got] == [r["decoded"] for r in expected]
    np.testing.assert_allclose(
        [r["confidence"] for r in got], [r["confidence"] for r in expected], rtol=1e-4, atol=1e-30
    )


@pytest.fixture(scope="module")
def unbatched_rows(unbatched) -> list:
    """Each image's prediction, one request at a time with batching off."""
    rows = []
    for image in IMAGES:
        status, answer = predict("rest", unbatched, [image])
        assert status == 200, answer
        rows.extend(answer)
    return rows


# --- batching on -----------------------------------------------------------------------------


def test_concurrent_single_image_requests_share_model_calls_and_get_their_own_outputs(
    batched, unbatched_rows
):
    """8 concurrent requests, half REST and half gRPC, each with a different image: fewer than 8
    model calls (one, unless the machine stalls for seconds), each caller its own prediction."""
    before = calls(batched)
    kinds = ["rest", "grpc"] * (len(IMAGES) // 2)
    results = concurrently(
        [lambda k=k, i=i: predict(k, batched, [i]) for k, i in zip(kinds, IMAGES)]
    )
    for (status, rows), expected in zip(results, unbatched_rows):
        assert status in (200, "OK"), rows
        assert_same_rows(rows, [expected])
    model_calls, examples = (a - b for a, b in zip(calls(batched), before))
    assert examples == len(IMAGES)
    assert 1 <= model_calls < len(IMAGES)


def test_prometheus_metrics_count_model_calls_and_examples(batched):
    concurrently([lambda i=i: predict("rest", batched, [i]) for i in IMAGES])
    model_calls, examples = calls(batched)
    with urllib.request.urlopen(batched.rest_url + METRICS_PATH, timeout=TIMEOUT) as response:
        text = response.read().decode()
    labels = '{model_name="lines",model_version="2",signature_name="serving_default"}'
    assert f"local_server_model_calls_total{labels} {model_calls}\n" in text
    assert f"local_server_model_call_examples_total{labels} {examples}\n" in text
    assert examples > model_calls  # batches of more than one image
    assert ':tensorflow:serving:request_count{model_name="lines",status="OK"}' in text


def test_full_queue_is_unavailable_like_tf_serving(models, unbatched_rows):
    """max_enqueued_batches 1: while one batch waits to fill, a request that does not fit in it
    is refused at once with UNAVAILABLE (HTTP 503); the waiting requests are then served."""
    server = start_server(
        models,
        BatchingOptions(
            max_batch_size=2,
            batch_timeout_micros=60_000_000,
            max_enqueued_batches=1,
            num_batch_threads=1,
        ),
    )
    try:
        first = []
        waiting = threading.Thread(target=lambda: first.append(predict("rest", server, IMAGES[:1])))
        waiting.start()
        deadline = time.monotonic() + TIMEOUT
        while server.batcher.pending() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.batcher.pending() == 1  # one image waiting in an open batch of up to 2

        status, error = predict("rest", server, IMAGES[1:3])  # 1 + 2 > 2: needs a second batch
        assert status == 503
        assert error.startswith(
            "The batch scheduling queue to which this task was submitted is full"
        )
        status, error = predict("grpc", server, IMAGES[1:3])
        assert (status, "max_enqueued_batches is 1" in error) == ("UNAVAILABLE", True)
        counts = server.metrics.request_counts()
        assert counts[("lines", "UNAVAILABLE")] == 2

        status, rows = predict("grpc", server, IMAGES[1:2])  # fills the batch: both answered
        waiting.join(TIMEOUT)
        assert status == "OK"
        assert_same_rows(rows, unbatched_rows[1:2])
        ((status, rows),) = first
        assert status == 200
        assert_same_rows(rows, unbatched_rows[:1])
        assert calls(server) == (1, 2)
    finally:
        server.stop()


def test_request_larger_than_max_batch_size_runs_on_its_own(models, unbatched_rows):
    """TF Serving refuses such a request (unless it splits large batches); here it runs alone,
    at once, without waiting for the batch timeout."""
    server = start_server(
        models,
        BatchingOptions(
            max_batch_size=2,
            batch_timeout_micros=60_000_000,
            max_enqueued_batches=1,
            num_batch_threads=1,
        ),
    )
    try:
        for kind in ("rest", "grpc"):
            started = time.monotonic()
            status, rows = predict(kind, server, IMAGES[:3])
            assert status in (200, "OK"), rows
            assert_same_rows(rows, unbatched_rows[:3])
            assert time.monotonic() - started < 30
        assert calls(server) == (2, 6)
        assert server.batcher.pending() == 0
    finally:
        server.stop()


def test_batch_timeout_sends_a_batch_that_did_not_fill(models, unbatched_rows):
    server = start_server(
        models,
        BatchingOptions(max_batch_size=32, batch_timeout_micros=300_000, num_batch_threads=1),
    )
    try:
        started = time.monotonic()
        status, rows = predict("grpc", server, IMAGES[:1])
        assert time.monotonic() - started >= 0.29  # waited for company that did not come
        assert status == "OK"
        assert_same_rows(rows, unbatched_rows[:1])
        assert calls(server) == (1, 1)
    finally:
        server.stop()


def test_a_bad_image_fails_only_its_own_request(batched, unbatched_rows):
    """The merged call fails; its requests are run again one by one, so each gets the answer it
    would have got alone."""
    images = list(IMAGES)
    images[3] = b"this is not an image"
    results = concurrently([lambda i=i: predict("rest", batched, [i]) for i in images])
    for index, ((status, rows), expected) in enumerate(zip(results, unbatched_rows)):
        if index == 3:
            assert status == 400 and "image" in rows.lower()
        else:
            assert status == 200, rows
            assert_same_rows(rows, [expected])


# --- batching off ----------------------------------------------------------------------------


def test_batching_off_runs_every_request_on_its_own(unbatched, unbatched_rows):
    before = calls(unbatched)
    assert unbatched.batcher is None
    kinds = ["rest", "grpc"] * (len(IMAGES) // 2)
    results = concurrently(
        [lambda k=k, i=i: predict(k, unbatched, [i]) for k, i in zip(kinds, IMAGES)]
    )
    for (status, rows), expected in zip(results, unbatched_rows):
        assert status in (200, "OK"), rows
        assert_same_rows(rows, [expected])
    after = calls(unbatched)
    assert (after[0] - before[0], after[1] - before[1]) == (len(IMAGES), len(IMAGES))


# --- the Batcher on its own ------------------------------------------------------------------


def test_batches_are_cut_at_max_batch_size_and_sliced_back():
    """Five one-example requests, batches of at most 2: batches of 2, 2 and 1 (the last after
    the timeout); each request gets back its own example."""
    sizes = []

    def execute(servable, signature_name, arrays, wanted):
        sizes.append(len(arrays["x"]))
        return {"y": arrays["x"] * 10}

    batcher = Batcher(
        BatchingOptions(max_batch_size=2, batch_timeout_micros=300_000, num_batch_threads=1),
        execute,
    ).start()
    try:
        results = concurrently(
            [lambda n=n: batcher.run("servable", "sig", {"x": np.array([n])}) for n in range(5)]
        )
    finally:
        batcher.stop()
    assert [result["y"].tolist() for result in results] == [[0], [10], [20], [30], [40]]
    assert sorted(sizes) == [1, 2, 2]


def test_stopping_fails_queued_requests():
    batcher = Batcher(
        BatchingOptions(max_batch_size=4, batch_timeout_micros=60_000_000, num_batch_threads=1),
        lambda *args: {},
    ).start()
    errors = []

    def run():
        try:
            batcher.run("servable", "sig", {"x": np.array([1])})
        except ServingError as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    while batcher.pending() < 1:
        time.sleep(0.01)
    batcher.stop()
    thread.join(TIMEOUT)
    assert [(e.code, e.http_status) for e in errors] == [(grpc.StatusCode.UNAVAILABLE, 503)]


# --- command line ----------------------------------------------------------------------------


def test_command_line_batching_flags(models):
    base = ["--models_dir", str(models), "--rest_port", "0", "--grpc_port", "0"]
    assert build_server(base).batcher is None
    server = build_server(
        base + ["--enable_batching", "--batching_parameters_file", BATCHING_CONFIG]
    )
    assert server.batching == BatchingOptions(
        max_batch_size=32, batch_timeout_micros=5000, max_enqueued_batches=100, num_batch_threads=2
    )
    defaults = build_server(base + ["--enable_batching"]).batching  # TF Serving's defaults
    assert (
        defaults.max_batch_size,
        defaults.batch_timeout_micros,
        defaults.max_enqueued_batches,
    ) == (1000, 0, 10)
    assert build_server(base + ["--enable_batching=false"]).batcher is None
    assert build_server(base + ["--enable_batching=true", "--grpc_max_threads", "32"]).batcher


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batching_parameters_file", BATCHING_CONFIG], "without --enable_batching"),
        (["--enable_batching", "--batching_parameters_file", "missing.config"], "cannot read"),
        (
            ["--enable_batching", "--batching_parameters_file", str(CONFIG_DIR / "models.config")],
            "not a BatchingParameters text proto",
        ),
        (["--enable_batching=maybe"], "expected true or false"),
        (["--grpc_max_threads", "0"], "at least 1"),
    ],
)
def test_command_line_batching_errors(models, extra, message, capsys):
    with pytest.raises(SystemExit):
        build_server(["--models_dir", str(models), *extra])
    assert message in capsys.readouterr().err


def test_bad_batching_parameters_are_refused(tmp_path, capsys):
    config = tmp_path / "batching.config"
    config.write_text("max_batch_size { value: 0 }\n")
    with pytest.raises(SystemExit):
        build_server(
            [
                "--models_dir",
                str(tmp_path),
                "--enable_batching",
                "--batching_parameters_file",
                str(config),
            ]
        )
    assert "max_batch_size must be at least 1" in capsys.readouterr().err
