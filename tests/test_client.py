"""serving.client against a small fake TF Serving (real gRPC and REST APIs, real SavedModel).

The fake lives here and test_app.py / test_web_page.py import it: `FakeServing` serves an
untrained line model (exported by trainer.export, as the Pusher would) under versions 1 and 2
with labels stable -> 1 and canary -> 2, answering PredictionService.Predict,
ModelService.GetModelStatus and `POST /v1/models/...:predict` with TF Serving's messages and
status codes, and records each request's model spec.
"""

import atexit
import base64
import functools
import io
import json
import re
import shutil
import socket
import tempfile
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import client as client_module
from serving.client import GrpcClient, Prediction, RestClient, ServingError
from serving.predictors import LinePredictor, PredictionError

AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
LOADING = get_model_status_pb2.ModelVersionStatus.State.LOADING
HTTP_STATUS = {grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INVALID_ARGUMENT: 400}

# --- images ----------------------------------------------------------------------------------


def png_bytes(array: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def line_image(seed: int = 0, width: int = 112) -> np.ndarray:
    """A white 28 x width line with a few dark strokes."""
    rng = np.random.default_rng(seed)
    image = np.full((28, width), 255, np.uint8)
    for x in range(4, width - 12, 14):
        top, left = rng.integers(3, 8), x + rng.integers(0, 4)
        image[top : top + 18, left : left + 3] = 20
        image[top + 8 : top + 11, left : left + 9] = 20
    return image


# --- the fake TF Serving ---------------------------------------------------------------------


@functools.cache
def exported_line_model() -> str:
    """An untrained CTC line model exported for serving; once per test session."""
    from trainer.export import export_line_model
    from trainer.lines import build_line_model
    from training.config import ExperimentConfig

    directory = tempfile.mkdtemp(prefix="fake_serving_model_")
    atexit.register(shutil.rmtree, directory, True)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "EmnistLinesDataset",
            "model": "LineModelCtc",
            "dataset_args": {"max_length": 4},
            "network_args": {"lstm_dim": 16, "conv_dim": 8},
        }
    )
    tf.keras.utils.set_random_seed(0)
    model = build_line_model(config, (28, 112, 1))
    path = str(Path(directory) / "1")
    export_line_model(
        model, config, {"image": tf.io.FixedLenFeature([28, 112, 1], tf.float32)}, path
    )
    return path


@functools.cache
def in_process_predictor() -> LinePredictor:
    return LinePredictor(exported_line_model())


class FakeError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class FakeServing:
    """TF Serving's Predict/GetModelStatus (gRPC) and predict (REST) over one loaded model."""

    def __init__(self, model_dir: str, name: str = "lines", versions=(1, 2), labels=None):
        signature = tf.saved_model.load(model_dir).signatures["serving_default"]
        self.name = name
        self.versions = {v: signature for v in versions}
        self.labels = dict(labels if labels is not None else {"stable": 1, "canary": 2})
        self.states = {v: AVAILABLE for v in versions}
        self.requests = []  # {"api", "name", "version", "label", "images"} per request
        self._lock = threading.Lock()
        self._grpc = self._http = None

    # the model server's logic, shared by both APIs

    def resolve(self, name: str, version, label):
        if name != self.name:
            raise FakeError(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})"
            )
        if label:
            if label not in self.labels:
                raise FakeError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {label}",
                )
            version = self.labels[label]
        if version is None:
            version = max(self.versions)
        if version not in self.versions or self.states[version] != AVAILABLE:
            raise FakeError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({name}, {version})",
            )
        return version, self.versions[version]

    def run(self, api: str, name: str, version, label, images: list) -> tuple:
        with self._lock:
            self.requests.append(
                {
                    "api": api,
                    "name": name,
                    "version": version,
                    "label": label,
                    "images": len(images),
                }
            )
        version, signature = self.resolve(name, version, label)
        try:
            outputs = signature(image_bytes=tf.constant(images, dtype=tf.string))
        except tf.errors.InvalidArgumentError as e:
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, e.message.strip()) from None
        return version, {key: value.numpy() for key, value in outputs.items()}

    # gRPC

    def start_grpc(self) -> str:
        fake = self

        class Predictions(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                spec = request.model_spec
                try:
                    if spec.signature_name not in ("", "serving_default"):
                        raise FakeError(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            f'Serving signature name: "{spec.signature_name}" not found',
                        )
                    if "image_bytes" not in request.inputs:
                        raise FakeError(
                            grpc.StatusCode.INVALID_ARGUMENT, "input image_bytes missing"
                        )
                    images = list(tf.make_ndarray(request.inputs["image_bytes"]).reshape(-1))
                    version, outputs = fake.run(
                        "grpc",
                        spec.name,
                        spec.version.value if spec.HasField("version") else None,
                        spec.version_label or None,
                        images,
                    )
                except FakeError as e:
                    context.abort(e.code, e.message)
                response = predict_pb2.PredictResponse()
                response.model_spec.name = spec.name
                response.model_spec.version.value = version
                response.model_spec.signature_name = "serving_default"
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
                return response

        class Models(model_service_pb2_grpc.ModelServiceServicer):
            def GetModelStatus(self, request, context):
                spec = request.model_spec
                if spec.name != fake.name:
                    context.abort(
                        grpc.StatusCode.NOT_FOUND,
                        f"Could not find any versions of model {spec.name}",
                    )
                versions = sorted(fake.versions)
                if spec.HasField("version"):
                    if spec.version.value not in fake.versions:
                        context.abort(
                            grpc.StatusCode.NOT_FOUND,
                            f"Could not find version {spec.version.value} of model {spec.name}",
                        )
                    versions = [spec.version.value]
                response = get_model_status_pb2.GetModelStatusResponse()
                for version in versions:
                    status = response.model_version_status.add()
                    status.version = version
                    status.state = fake.states[version]
                return response

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            Predictions(), self._grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), self._grpc)
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return f"127.0.0.1:{port}"

    # REST

    def start_rest(self) -> str:
        fake = self
        path_pattern = re.compile(
            r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:predict$"
        )

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, payload: dict):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                match = path_pattern.match(self.path)
                if not match:
                    return self.reply(404, {"error": f"Malformed request: POST {self.path}"})
                name, version, label = match.groups()
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    images = [base64.b64decode(i["image_bytes"]["b64"]) for i in body["instances"]]
                except (ValueError, KeyError, TypeError) as e:
                    return self.reply(400, {"error": f"JSON Parse error: {e}"})
                try:
                    _, outputs = fake.run(
                        "rest", name, int(version) if version else None, label, images
                    )
                except FakeError as e:
                    return self.reply(HTTP_STATUS.get(e.code, 500), {"error": e.message})
                predictions = [
                    {
                        key: (value[i].decode() if value.dtype == object else value[i].tolist())
                        for key, value in outputs.items()
                    }
                    for i in range(len(images))
                ]
                self.reply(200, {"predictions": predictions})

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake():
    serving = FakeServing(exported_line_model())
    serving.grpc_address = serving.start_grpc()
    serving.rest_url = serving.start_rest()
    yield serving
    serving.stop()


@pytest.fixture
def served(fake):
    fake.requests.clear()
    fake.states.update({v: AVAILABLE for v in fake.versions})
    return fake


def make_client(kind: str, served, **kwargs):
    if kind == "rest":
        return RestClient(served.rest_url, kwargs.pop("model", "lines"), timeout=20, **kwargs)
    return GrpcClient(served.grpc_address, kwargs.pop("model", "lines"), timeout=20, **kwargs)


KINDS = ["rest", "grpc"]


# --- predictions -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_batch_of_paths_bytes_and_arrays_matches_the_model_in_one_request(kind, served, tmp_path):
    path = tmp_path / "line.png"
    path.write_bytes(png_bytes(line_image(1)))
    images = [str(path), png_bytes(line_image(2, width=150)), line_image(3), line_image(4) / 255.0]

    with make_client(kind, served) as client:
        predictions = client.predict(images)

    expected = in_process_predictor().predict_batch(images)
    assert [p.text for p in predictions] == [text for text, _ in expected]
    assert [p.confidence for p in predictions] == pytest.approx([c for _, c in expected], rel=1e-5)
    assert all(isinstance(p, Prediction) and 0.0 <= p.confidence <= 1.0 for p in predictions)
    assert served.requests == [
        {"api": kind, "name": "lines", "version": None, "label": None, "images": 4}
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"version": 1}, (1, None)),
        ({"version": "2"}, (2, None)),
        ({"label": "canary"}, (None, "canary")),
    ],
)
def test_version_and_label_reach_the_server(kind, spec, expected, served):
    with make_client(kind, served, **spec) as client:
        assert len(client.predict([line_image()])) == 1
    (request,) = served.requests
    assert (request["version"], request["label"]) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_grpc_per_call_version_overrides_and_rest_url_shape(kind, served):
    if kind == "rest":
        assert RestClient("http://h:1/", "lines").url == "http://h:1/v1/models/lines:predict"
        assert (
            RestClient("http://h:1", "m", version=3).url
            == "http://h:1/v1/models/m/versions/3:predict"
        )
        assert (
            RestClient("http://h:1", "m", label="stable").url
            == "http://h:1/v1/models/m/labels/stable:predict"
        )
    else:
        with make_client(kind, served, label="stable") as client:
            client.predict([line_image()], version=2)
        assert served.requests[0]["version"] == 2


def test_version_and_label_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        RestClient("http://127.0.0.1:1", "lines", version=1, label="stable")
    with pytest.raises(ValueError, match="integer"):
        GrpcClient("127.0.0.1:1", "lines", version="latest")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "spec, http_status, grpc_status, message",
    [
        ({"model": "nope"}, 404, "NOT_FOUND", r"Servable not found for request: Latest\(nope\)"),
        ({"version": 7}, 404, "NOT_FOUND", r"Specific\(lines, 7\)"),
        ({"label": "beta"}, 400, "INVALID_ARGUMENT", "Unrecognized servable version label: beta"),
    ],
)
def test_server_refusals_become_serving_errors(
    kind, spec, http_status, grpc_status, message, served
):
    with (
        make_client(kind, served, **spec) as client,
        pytest.raises(ServingError, match=message) as raised,
    ):
        client.predict([line_image()])
    assert raised.value.status == (http_status if kind == "rest" else grpc_status)
    assert raised.value.http_status == http_status
    assert re.search(message, raised.value.message)


@pytest.mark.parametrize("kind", KINDS)
def test_image_the_model_cannot_decode_is_the_servers_400(kind, served):
    webp = png_bytes(line_image(), format="WEBP")  # PIL reads it, the model does not
    client = make_client(kind, served)
    with client, pytest.raises(ServingError, match="Unknown image file format") as raised:
        client.predict([webp])
    assert raised.value.http_status == 400


@pytest.mark.parametrize("kind", KINDS)
def test_server_down_is_unavailable(kind):
    if kind == "rest":
        client = RestClient(f"http://127.0.0.1:{closed_port()}", "lines", timeout=5)
    else:
        client = GrpcClient(f"127.0.0.1:{closed_port()}", "lines", timeout=5)
    with client, pytest.raises(ServingError, match="127.0.0.1") as raised:
        client.predict([line_image()])
    assert raised.value.http_status == 503


@pytest.mark.parametrize("kind", KINDS)
def test_bad_images_are_rejected_before_sending(kind, served, tmp_path):
    truncated = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    truncated = truncated[: len(truncated) // 2]
    bad = [
        ([str(tmp_path / "missing.png")], "missing.png"),
        ([line_image(), truncated], "not a readable image"),
        ([b"hello"], "not a readable image"),
        ([np.zeros((2, 3, 3), np.uint8)], "2-D grayscale"),
        ([np.full((5, 5), 2.0)], r"float in \[0, 1\]"),
        ([], "no images"),
        (png_bytes(line_image()), "list of images"),
        ([42], "got int"),
    ]
    with make_client(kind, served) as client:
        for images, message in bad:
            with pytest.raises(PredictionError, match=message):
                client.predict(images)
    assert served.requests == []


# --- model status ----------------------------------------------------------------------------


def test_model_status_and_readiness(served):
    with GrpcClient(served.grpc_address, "lines") as client:
        assert client.status() == [
            {"version": 1, "state": "AVAILABLE", "error": ""},
            {"version": 2, "state": "AVAILABLE", "error": ""},
        ]
        assert client.ready()
        served.states.update({1: LOADING, 2: LOADING})
        assert not client.ready()
    with GrpcClient(served.grpc_address, "lines", version=2) as client:
        assert [s["version"] for s in client.status()] == [2]
    client = GrpcClient(served.grpc_address, "nope")
    with client, pytest.raises(ServingError, match="Could not find any versions of model nope"):
        client.ready()


# --- CLI -------------------------------------------------------------------------------------


def test_cli_prints_one_line_per_image(served, tmp_path, capsys):
    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"line{seed}.png")
        paths[-1].write_bytes(png_bytes(line_image(seed)))
    expected = in_process_predictor().predict_batch(paths)

    for target in (["--rest", served.rest_url], ["--grpc", served.grpc_address]):
        argv = ["predict", *map(str, paths), "--model", "lines", "--label", "stable", *target]
        assert client_module.main(argv) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split("\t") for line in lines] == [
            [str(p), text, f"{confidence:.4f}"] for p, (text, confidence) in zip(paths, expected)
        ]
    assert [r["label"] for r in served.requests] == ["stable", "stable"]

    assert (
        client_module.main(
            ["predict", str(tmp_path / "nothing.png"), "--grpc", served.grpc_address]
        )
        == 1
    )
    assert "image file not found" in capsys.readouterr().err
    assert (
        client_module.main(["predict", str(paths[0]), "--version", "9", "--rest", served.rest_url])
        == 1
    )
    assert "404: Servable not found" in capsys.readouterr().err
