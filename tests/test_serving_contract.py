"""The serving contract: TF Serving's REST and gRPC APIs over the pushed models.

Every test taking `server` runs against the local server (serving/local_server.py, started here
on free 127.0.0.1 ports over freshly exported models) and, when TF_SERVING_REST,
TF_SERVING_GRPC and TF_SERVING_MODELS_DIR are set, against that real TensorFlow Serving too
(prepared as described in serving/contract_models.py and README.md); without them the
real-server variant is reported as one skipped test naming the variables. The tests at the end cover
what only the local server has: its size limits, its command line and its handling of broken
versions.
"""

import base64
import dataclasses
import http.client
import io
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.contract_models import template_model, write_contract_models
from serving.local_server import (
    LocalModelServer,
    ModelManager,
    build_server,
    sources_from_config,
)
from serving.predictors import LinePredictor

REAL_SERVER_ENV = ("TF_SERVING_REST", "TF_SERVING_GRPC", "TF_SERVING_MODELS_DIR")
WORDS = ["ab", "Cde", "xy z", "Q7"]
LOCAL_MAX_REQUEST_BYTES = 1024 * 1024
LOCAL_MAX_IMAGE_BYTES = 256 * 1024
TIMEOUT = 60


# --- images and clients ------------------------------------------------------------------


def line_png(text: str, width: int = 112, mode: str = "L", fmt: str = "PNG") -> bytes:
    image = Image.new(mode, (width, 28), "white")
    ImageDraw.Draw(image).text((3, 8), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}


@dataclasses.dataclass
class Server:
    kind: str
    rest_url: str
    grpc_target: str
    models_dir: Path
    local: LocalModelServer | None = None

    def rest(self, method: str, path: str, body=None, timeout: float = TIMEOUT) -> tuple:
        """(HTTP status, parsed JSON) for a request; `body` is JSON-encoded unless bytes."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.rest_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def predict(self, path: str, body) -> tuple:
        return self.rest("POST", f"/v1/models/{path}:predict", body)

    def channel(self):
        return grpc.insecure_channel(self.grpc_target)


@pytest.fixture(scope="session")
def contract_models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract_models")
    write_contract_models(root)
    return root


@pytest.fixture(scope="session")
def local_server(contract_models):
    sources = sources_from_config(contract_models / "models.config", contract_models)
    server = LocalModelServer(
        ModelManager(sources, poll_seconds=0.2),
        rest_port=0,
        grpc_port=0,
        max_request_bytes=LOCAL_MAX_REQUEST_BYTES,
        max_image_bytes=LOCAL_MAX_IMAGE_BYTES,
        metrics_path="/monitoring/prometheus/metrics",
    ).start()
    yield Server("local", server.rest_url, server.grpc_target, contract_models, server)
    server.stop()


MISSING_ENV = [name for name in REAL_SERVER_ENV if not os.environ.get(name)]
NO_REAL_SERVER = (
    f"contract tests ran against the local server only ({', '.join(MISSING_ENV)} unset): to run "
    "them against a real TF Serving as well, set TF_SERVING_REST (http://127.0.0.1:8501), "
    "TF_SERVING_GRPC (127.0.0.1:8500) and TF_SERVING_MODELS_DIR (the directory it serves, "
    "written by `python -m serving.contract_models DIR`)"
)


@pytest.fixture(scope="session", params=["local"] + ([] if MISSING_ENV else ["tf_serving"]))
def server(request) -> Server:
    if request.param == "local":
        return request.getfixturevalue("local_server")
    return Server(
        "tf_serving",
        os.environ["TF_SERVING_REST"].rstrip("/"),
        os.environ["TF_SERVING_GRPC"],
        Path(os.environ["TF_SERVING_MODELS_DIR"]),
    )


@pytest.mark.skipif(bool(MISSING_ENV), reason=NO_REAL_SERVER)
def test_real_tf_serving_is_reachable():
    """The real-server variant: every test taking `server` also runs against it."""
    real = Server(
        "tf_serving",
        os.environ["TF_SERVING_REST"].rstrip("/"),
        os.environ["TF_SERVING_GRPC"],
        Path(os.environ["TF_SERVING_MODELS_DIR"]),
    )
    assert (real.models_dir / "lines" / "1" / "saved_model.pb").is_file()
    assert available_versions(real, "lines") == {1, 2}


@pytest.fixture(scope="session")
def images() -> list:
    return [line_png(word) for word in WORDS[:3]] + [line_png("Jpg", 90, "RGB", "JPEG")]


@pytest.fixture(scope="session")
def reference(server, images) -> list:
    """What the served model reads, run in process: [(text, confidence), ...] per image. (All
    versions of the contract models are copies of one export.)"""
    return LinePredictor(server.models_dir / "lines" / "1").predict_batch(images)


@pytest.fixture(scope="session")
def local_reference(images) -> list:
    return LinePredictor(template_model()).predict_batch(images)


def assert_reads(predictions: list, reference: list) -> None:
    assert [p["text"] for p in predictions] == [text for text, _ in reference]
    for prediction, (_, confidence) in zip(predictions, reference):
        assert prediction["confidence"] == pytest.approx(confidence, rel=1e-4, abs=1e-30)
        assert len(prediction["decoded"]) == 7 and all(
            isinstance(i, int) for i in prediction["decoded"]
        )


def available_versions(server: Server, model: str) -> set:
    status, body = server.rest("GET", f"/v1/models/{model}")
    assert status == 200, body
    return {int(v["version"]) for v in body["model_version_status"] if v["state"] == "AVAILABLE"}


# --- REST: status and metadata -----------------------------------------------------------


def test_status_lists_every_version(server):
    status, body = server.rest("GET", "/v1/models/lines")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": v,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
            for v in ("2", "1")
        ]
    }


def test_status_of_one_version_and_by_label(server):
    status, body = server.rest("GET", "/v1/models/lines/versions/1")
    assert status == 200
    assert [(v["version"], v["state"]) for v in body["model_version_status"]] == [
        ("1", "AVAILABLE")
    ]
    # TF Serving answers a status request by label with every version of the model.
    status, body = server.rest("GET", "/v1/models/lines/labels/stable")
    assert status == 200
    assert ("1", "AVAILABLE") in [(v["version"], v["state"]) for v in body["model_version_status"]]


@pytest.mark.parametrize(
    "path, version",
    [
        ("lines", "2"),
        ("lines/versions/1", "1"),
        ("lines/labels/stable", "1"),
        ("lines/labels/canary", "2"),
    ],
)
def test_metadata_describes_the_signatures(server, path, version):
    status, body = server.rest("GET", f"/v1/models/{path}/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "lines", "signature_name": "", "version": version}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "from_examples"} <= set(signatures)
    serving = signatures["serving_default"]
    assert serving["method_name"] == "tensorflow/serving/predict"
    assert list(serving["inputs"]) == ["image_bytes"]
    assert serving["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert serving["inputs"]["image_bytes"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    outputs = serving["outputs"]
    assert sorted(outputs) == ["character_confidences", "confidence", "decoded", "text"]
    assert outputs["character_confidences"]["dtype"] == "DT_FLOAT"
    assert (
        outputs["text"]["dtype"],
        outputs["confidence"]["dtype"],
        outputs["decoded"]["dtype"],
    ) == ("DT_STRING", "DT_FLOAT", "DT_INT64")
    assert [d["size"] for d in outputs["decoded"]["tensor_shape"]["dim"]] == ["-1", "7"]


# --- REST: predict -----------------------------------------------------------------------


def test_predict_instances_of_b64_values(server, images, reference):
    status, body = server.predict("lines", {"instances": [b64(images[0])]})
    assert status == 200, body
    assert_reads(body["predictions"], reference[:1])


def test_predict_batch_of_named_instances(server, images, reference):
    instances = [{"image_bytes": b64(image)} for image in images]
    status, body = server.predict(
        "lines", {"signature_name": "serving_default", "instances": instances}
    )
    assert status == 200, body
    assert_reads(body["predictions"], reference)


def test_predict_columnar_inputs(server, images, reference):
    for inputs in (
        [b64(image) for image in images],
        {"image_bytes": [b64(image) for image in images]},
    ):
        status, body = server.predict("lines", {"inputs": inputs})
        assert status == 200, body
        outputs = body["outputs"]
        assert sorted(outputs) == ["character_confidences", "confidence", "decoded", "text"]
        rows = [dict(zip(outputs, values)) for values in zip(*outputs.values())]
        assert_reads(rows, reference)


@pytest.mark.parametrize(
    "path", ["lines/versions/1", "lines/versions/2", "lines/labels/stable", "lines/labels/canary"]
)
def test_predict_by_version_and_label(server, images, reference, path):
    status, body = server.predict(path, {"instances": [b64(image) for image in images[:2]]})
    assert status == 200, body
    assert_reads(body["predictions"], reference[:2])


def test_predict_with_the_examples_signature(server, images):
    pixels = np.asarray(
        Image.open(io.BytesIO(images[0])).convert("L").resize((112, 28)), np.float32
    )
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": tf.train.Feature(
                    float_list=tf.train.FloatList(value=(1.0 - pixels / 255).ravel())
                )
            }
        )
    )
    status, body = server.predict(
        "lines",
        {"signature_name": "from_examples", "instances": [b64(example.SerializeToString())]},
    )
    assert status == 200, body
    (prediction,) = body["predictions"]
    assert isinstance(prediction["text"], str) and 0 <= prediction["confidence"] <= 1


# --- REST: errors --------------------------------------------------------------------------

PNG = line_png("ok")
BAD_REQUESTS = {
    # id: (method, path, body, HTTP status, part of the error message or None)
    "bad json": ("POST", "/v1/models/lines:predict", b'{"instances": [', 400, "JSON Parse error"),
    "empty body": ("POST", "/v1/models/lines:predict", b"", 400, "JSON Parse error"),
    "not an object": ("POST", "/v1/models/lines:predict", [1, 2], 400, "Is not object"),
    "no instances or inputs": (
        "POST",
        "/v1/models/lines:predict",
        {"instance": []},
        400,
        "Missing 'inputs' or 'instances' key",
    ),
    "both instances and inputs": (
        "POST",
        "/v1/models/lines:predict",
        {"instances": [b64(PNG)], "inputs": [b64(PNG)]},
        400,
        "only one of",
    ),
    "empty instances": ("POST", "/v1/models/lines:predict", {"instances": []}, 400, "No values"),
    "unknown signature": (
        "POST",
        "/v1/models/lines:predict",
        {"signature_name": "nope", "instances": [b64(PNG)]},
        400,
        'Serving signature name: "nope" not found',
    ),
    "unknown input name": (
        "POST",
        "/v1/models/lines:predict",
        {"instances": [{"image": b64(PNG)}]},
        400,
        "does not have named input: image",
    ),
    "missing named input": (
        "POST",
        "/v1/models/lines:predict",
        {"inputs": {"image": [b64(PNG)]}},
        400,
        "Missing named input: image_bytes",
    ),
    "number for bytes": ("POST", "/v1/models/lines:predict", {"instances": [3.5]}, 400, None),
    "bad base64": (
        "POST",
        "/v1/models/lines:predict",
        {"instances": [{"b64": "%%%"}]},
        400,
        "base64",
    ),
    "ragged instances": (
        "POST",
        "/v1/models/lines:predict",
        {"instances": [b64(PNG), [b64(PNG)]]},
        400,
        None,
    ),
    "undecodable image": (
        "POST",
        "/v1/models/lines:predict",
        {"instances": [b64(b"this is not an image")]},
        400,
        "image",
    ),
    "truncated png": (
        "POST",
        "/v1/models/lines:predict",
        {"instances": [b64(PNG[: len(PNG) // 2])]},
        400,
        None,
    ),
    "unknown label": (
        "POST",
        "/v1/models/lines/labels/nope:predict",
        {"instances": [b64(PNG)]},
        400,
        "Unrecognized servable version label: nope",
    ),
    "unknown model": (
        "POST",
        "/v1/models/nope:predict",
        {"instances": [b64(PNG)]},
        404,
        "Servable not found for request: Latest(nope)",
    ),
    "unknown version": (
        "POST",
        "/v1/models/lines/versions/99:predict",
        {"instances": [b64(PNG)]},
        404,
        "Servable not found for request: Specific(lines, 99)",
    ),
    "status of unknown model": (
        "GET",
        "/v1/models/nope",
        None,
        404,
        "Could not find any versions of model nope",
    ),
    "status of unknown version": (
        "GET",
        "/v1/models/lines/versions/99",
        None,
        404,
        "Could not find version 99 of model lines",
    ),
    "metadata of unknown model": (
        "GET",
        "/v1/models/nope/metadata",
        None,
        404,
        "Servable not found",
    ),
    "metadata of unknown version": (
        "GET",
        "/v1/models/lines/versions/99/metadata",
        None,
        404,
        "Servable not found",
    ),
    "malformed path": ("GET", "/v1/models/lines/versions/x", None, 400, "Malformed request"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_requests_get_tf_serving_errors(server, case):
    method, path, body, expected_status, message = BAD_REQUESTS[case]
    status, answer = server.rest(method, path, body)
    assert status == expected_status, answer
    assert set(answer) == {"error"} and answer["error"]
    if message:
        assert message in answer["error"]
    assert server.rest("GET", "/v1/models/lines")[0] == 200  # still serving


def test_server_survives_broken_connections(server, images, reference):
    host, port = server.rest_url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        sock.recv(1024)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:  # body cut short
        sock.sendall(
            b"POST /v1/models/lines:predict HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"inst'
        )
    with socket.create_connection((host, int(port)), timeout=TIMEOUT):
        pass
    status, body = server.predict("lines", {"instances": [b64(images[0])]})
    assert status == 200
    assert_reads(body["predictions"], reference[:1])


# --- gRPC --------------------------------------------------------------------------------


def grpc_predict(
    channel,
    images,
    model="lines",
    version=None,
    label=None,
    signature="",
    output_filter=(),
    inputs=None,
):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for name, tensor in (
        inputs or {"image_bytes": tf.make_tensor_proto(images, dtype=tf.string)}
    ).items():
        request.inputs[name].CopyFrom(tensor)
    request.output_filter.extend(output_filter)
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        request, timeout=TIMEOUT
    )


@pytest.mark.parametrize(
    "version, label, served",
    [(None, None, 2), (1, None, 1), (None, "stable", 1), (None, "canary", 2)],
)
def test_grpc_predict(server, images, reference, version, label, served):
    with server.channel() as channel:
        response = grpc_predict(channel, images, version=version, label=label)
    assert (response.model_spec.name, response.model_spec.version.value) == ("lines", served)
    assert response.model_spec.signature_name == "serving_default"
    texts = tf.make_ndarray(response.outputs["text"])
    confidences = tf.make_ndarray(response.outputs["confidence"])
    assert [t.decode() for t in texts] == [text for text, _ in reference]
    np.testing.assert_allclose(confidences, [c for _, c in reference], rtol=1e-4, atol=1e-30)
    assert tf.make_ndarray(response.outputs["decoded"]).shape == (len(images), 7)


def test_grpc_predict_output_filter(server, images):
    with server.channel() as channel:
        response = grpc_predict(channel, images[:1], output_filter=["text"])
    assert list(response.outputs) == ["text"]


def test_grpc_model_metadata(server):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "lines"
    request.model_spec.version_label = "stable"
    with server.channel() as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            request, timeout=TIMEOUT
        )
    assert (response.model_spec.name, response.model_spec.version.value) == ("lines", 1)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    assert set(serving.outputs) == {"text", "confidence", "decoded", "character_confidences"}
    assert "from_examples" in signatures.signature_def


def test_grpc_model_status(server):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "lines"
    with server.channel() as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        response = stub.GetModelStatus(request, timeout=TIMEOUT)
        request.model_spec.version.value = 2
        one = stub.GetModelStatus(request, timeout=TIMEOUT)
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert [(s.version, s.state, s.status.error_code) for s in response.model_version_status] == [
        (2, available, 0),
        (1, available, 0),
    ]
    assert [(s.version, s.state) for s in one.model_version_status] == [(2, available)]


def _status(name, version=None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    return lambda channel: model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        request, timeout=TIMEOUT
    )


def _metadata(name, version=None):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    return lambda channel: prediction_service_pb2_grpc.PredictionServiceStub(
        channel
    ).GetModelMetadata(request, timeout=TIMEOUT)


GRPC_ERRORS = {
    # id: (call(channel), status code, part of the message or None)
    "predict unknown model": (
        lambda c: grpc_predict(c, [PNG], model="nope"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found",
    ),
    "predict unknown version": (
        lambda c: grpc_predict(c, [PNG], version=99),
        grpc.StatusCode.NOT_FOUND,
        "Specific(lines, 99)",
    ),
    "predict unknown label": (
        lambda c: grpc_predict(c, [PNG], label="nope"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label",
    ),
    "predict undecodable image": (
        lambda c: grpc_predict(c, [b"not an image"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "image",
    ),
    "predict wrong input name": (
        lambda c: grpc_predict(c, None, inputs={"image": tf.make_tensor_proto([PNG])}),
        grpc.StatusCode.INVALID_ARGUMENT,
        None,
    ),
    "predict wrong dtype": (
        lambda c: grpc_predict(c, None, inputs={"image_bytes": tf.make_tensor_proto([1.0, 2.0])}),
        grpc.StatusCode.INVALID_ARGUMENT,
        None,
    ),
    "predict unknown signature": (
        lambda c: grpc_predict(c, [PNG], signature="nope"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "nope",
    ),
    "metadata unknown model": (_metadata("nope"), grpc.StatusCode.NOT_FOUND, "Servable not found"),
    "metadata unknown version": (_metadata("lines", 99), grpc.StatusCode.NOT_FOUND, None),
    "status unknown model": (
        _status("nope"),
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nope",
    ),
    "status unknown version": (
        _status("lines", 99),
        grpc.StatusCode.NOT_FOUND,
        "Could not find version 99 of model lines",
    ),
}


@pytest.mark.parametrize("case", GRPC_ERRORS, ids=list(GRPC_ERRORS))
def test_grpc_errors(server, images, case):
    call, code, message = GRPC_ERRORS[case]
    with server.channel() as channel:
        with pytest.raises(grpc.RpcError) as error:
            call(channel)
        assert error.value.code() == code, error.value.details()
        if message:
            assert message in error.value.details()
        assert grpc_predict(channel, images[:1]).model_spec.version.value == 2  # still serving


# --- hot reload --------------------------------------------------------------------------


def test_new_version_is_served_without_restart(server, images):
    """A version pushed while the server runs becomes available; the version that was serving
    keeps answering throughout; the policy (latest 2) then unloads the oldest."""
    base = server.models_dir / "reload"
    before = available_versions(server, "reload")
    old = max(before)
    new = max(int(p.name) for p in base.iterdir() if p.name.isdigit()) + 1
    body = {"instances": [b64(images[0])]}
    answers, stop = [], threading.Event()

    def keep_asking():
        while not stop.is_set():
            answers.append(server.predict(f"reload/versions/{old}", body)[0])

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        # Push as a deployment should: copy beside the model, then rename into place (TF Serving
        # may otherwise see a half-copied version).
        staging = base / f".incoming-{new}"
        shutil.copytree(base / str(old), staging)
        staging.rename(base / str(new))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status, body_ = server.rest("GET", f"/v1/models/reload/versions/{new}")
            if status == 200 and body_["model_version_status"][0]["state"] == "AVAILABLE":
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"version {new} did not become available within {TIMEOUT} s")
        time.sleep(0.3)
    finally:
        stop.set()
        asker.join()
    assert answers and set(answers) == {200}, (
        f"{len(answers)} requests to version {old}: {set(answers)}"
    )
    with server.channel() as channel:
        assert grpc_predict(channel, images[:1], model="reload").model_spec.version.value == new
    deadline = time.monotonic() + TIMEOUT
    while available_versions(server, "reload") != {old, new} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert available_versions(server, "reload") == {old, new}
    assert server.predict(f"reload/versions/{new}", body)[0] == 200


# --- the local server only ---------------------------------------------------------------


def test_local_body_and_image_limits(local_server, images):
    """413 for a body over --max_request_bytes or an image over --max_image_bytes (gRPC:
    RESOURCE_EXHAUSTED); the server keeps serving."""
    host, port = local_server.rest_url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    connection.request(
        "POST",
        "/v1/models/lines:predict",
        body=b" " * (LOCAL_MAX_REQUEST_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    response = connection.getresponse()
    assert response.status == 413
    assert "max_request_bytes" in json.loads(response.read())["error"]
    connection.close()
    big = b"\0" * (LOCAL_MAX_IMAGE_BYTES + 1)
    status, body = local_server.predict("lines", {"instances": [b64(big)]})
    assert status == 413 and "max_image_bytes" in body["error"]
    with local_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as error:
            grpc_predict(channel, [big])
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert local_server.predict("lines", {"instances": [b64(images[0])]})[0] == 200


def test_local_prometheus_metrics(local_server, images):
    """Configured models are labels; any other name (many of them, or one crafted to inject a
    line) is counted under one label, "_unknown", so the page neither grows nor breaks."""
    local_server.predict("lines", {"instances": [b64(images[0])]})
    names = [f"nope{i}" for i in range(20)] + ['evil"}\nfake_metric{a="b', "back\\slash"]
    for name in names:
        quoted = urllib.parse.quote(name, safe="")
        assert local_server.predict(quoted, {"instances": [b64(images[0])]})[0] == 404
    with urllib.request.urlopen(
        local_server.rest_url + "/monitoring/prometheus/metrics"
    ) as response:
        text = response.read().decode()
    assert ':tensorflow:serving:request_count{model_name="lines",status="OK"}' in text
    unknown = re.search(
        r'^:tensorflow:serving:request_count\{model_name="_unknown",'
        r'status="NOT_FOUND"\} (\d+)$',
        text,
        re.MULTILINE,
    )
    assert unknown and int(unknown.group(1)) >= len(names)
    assert "nope" not in text and "evil" not in text and "fake_metric" not in text
    for line in text.splitlines():  # every line a comment or a well-formed sample
        assert line.startswith("# TYPE ") or re.fullmatch(r"[:\w]+\{[^\n]*\} \d+", line), line


def test_metric_label_values_are_escaped():
    from serving.local_server.metrics import Metrics

    metrics = Metrics()  # no model list: every name is a label, escaped
    metrics.count('a"b\nc\\d', "OK")

    class NoModels:
        def available(self):
            return {}

    assert ':tensorflow:serving:request_count{model_name="a\\"b\\nc\\\\d",status="OK"} 1' in (
        metrics.render(NoModels()).splitlines()
    )


def test_local_models_dir_mode_reports_broken_versions_and_keeps_serving(
    tmp_path, images, local_reference
):
    """--models_dir serves every model directory (latest version); a version that fails to load
    is reported and the previous one keeps serving until a good copy arrives."""
    shutil.copytree(template_model(), tmp_path / "lines" / "1")
    server = build_server(
        [
            "--models_dir",
            str(tmp_path),
            "--rest_port",
            "0",
            "--grpc_port",
            "0",
            "--file_system_poll_wait_seconds",
            "0.1",
        ]
    ).start()
    client = Server("local", server.rest_url, server.grpc_target, tmp_path, server)
    try:
        assert available_versions(client, "lines") == {1}
        broken = tmp_path / "lines" / "2"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a saved model")
        state = wait_for_state(client, "lines", 2, "END")
        assert state["status"]["error_code"] != "OK"
        assert "Failed to load version 2 of model lines" in state["status"]["error_message"]
        status, body = client.predict("lines", {"instances": [b64(images[0])]})
        assert status == 200
        assert_reads(body["predictions"], local_reference[:1])

        shutil.rmtree(broken)  # a good copy, written non-atomically, replaces it
        shutil.copytree(template_model(), broken)
        shutil.copytree(template_model(), tmp_path / "words" / "5")  # and a new model appears
        wait_for_state(client, "lines", 2, "AVAILABLE")
        wait_for_state(client, "lines", 1, "END")  # latest 1: unloaded once 2 is available
        wait_for_state(client, "words", 5, "AVAILABLE")
        status, body = client.predict("words", {"instances": [b64(images[0])]})
        assert status == 200
        assert_reads(body["predictions"], local_reference[:1])

        shutil.rmtree(tmp_path / "words")  # a model directory removed: its versions unload
        wait_for_state(client, "words", 5, "END")
        assert client.predict("words", {"instances": [b64(images[0])]})[0] == 404
    finally:
        server.stop()


def wait_for_state(client: Server, model: str, version: int, state: str) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status, body = client.rest("GET", f"/v1/models/{model}/versions/{version}")
        if status == 200 and body["model_version_status"][0]["state"] == state:
            return body["model_version_status"][0]
        time.sleep(0.05)
    pytest.fail(f"{model} version {version} never reached {state}: {body}")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rest_port", "0"], "one of the arguments"),
        (["--model_config_file", "missing.config"], "cannot read"),
        (["--models_dir", "/nonexistent/models"], "not a directory"),
        (["--models_dir", ".", "--model_base_path_root", "."], "goes with --model_config_file"),
        (["--models_dir", ".", "--rest_port", "70000"], "not a port number"),
    ],
)
def test_local_command_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        build_server(argv)
    assert message in capsys.readouterr().err
