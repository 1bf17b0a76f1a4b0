"""serving.app: the HTTP prediction app in front of the local model server (tests/conftest.py).

Every endpoint, every kind of bad request (each answered with a 4xx JSON error naming the
problem, after which the app still serves), the model server's refusals, and the structured
prediction log line.
"""

import base64
import http.client
import json
import logging
import socket

import numpy as np
import pytest
from test_client import (
    closed_port,
    in_process_predictor,
    line_image,
    png_bytes,
)

from serving.app import AppOptions, PredictionApp, make_app
from serving.asgi import UvicornThread
from serving.client import GrpcClient

MAX_IMAGE_BYTES = 20_000


class AppServer:
    """The app on an ephemeral port, calling TF Serving at `grpc_address` for `model`."""

    def __init__(self, grpc_address: str, model: str = "lines", **settings):
        self.client = GrpcClient(grpc_address, model, timeout=20)
        self.server = UvicornThread(make_app(PredictionApp(self.client, **settings))).start()
        self.port = self.server.port

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ):
        """(status, JSON or text body, headers)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            if response.getheader("Content-Type", "").startswith("application/json"):
                data = json.loads(data)
            return response.status, data, response
        finally:
            connection.close()

    def predict_json(self, payload, path: str = "/v1/predict"):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"})[:2]

    def predict_file(
        self, data: bytes, fields: dict | None = None, field: str = "image", path="/v1/predict"
    ):
        boundary = "----test-boundary-7MA4YWxk"
        disposition = f"--{boundary}\r\nContent-Disposition: form-data"
        parts = [
            f'{disposition}; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in (fields or {}).items()
        ]
        parts.append(
            f'{disposition}; name="{field}"; filename="line.png"\r\n'
            "Content-Type: image/png\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", path, body, headers)[:2]

    def raw(self, data: bytes) -> bytes:
        """Sends raw bytes, half-closes, and returns everything the app answers."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def stop(self):
        self.server.stop()
        self.client.close()


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def app(model_server):
    server = AppServer(
        model_server.grpc_target, max_image_bytes=MAX_IMAGE_BYTES, max_pixels=200_000
    )
    yield server
    server.stop()


def assert_still_serving(app):
    status, body = app.predict_json({"image": data_url(png_bytes(line_image(9)))})
    assert status == 200 and set(body) == {"pred", "conf", "chars"}
    assert app.request("GET", "/healthz")[:2] == (200, {"status": "ok"})


# --- health ----------------------------------------------------------------------------------


def test_healthz_and_readyz(app, model_server):
    assert app.request("GET", "/healthz")[:2] == (200, {"status": "ok"})
    assert app.request("GET", "/readyz")[:2] == (
        200,
        {"status": "ready", "model": "lines", "versions": [2, 1]},
    )
    server = AppServer(model_server.grpc_target, model="broken")  # its only version failed to load
    try:
        status, body = server.request("GET", "/readyz")[:2]
        assert status == 503
        assert body == {"error": "model 'broken' is not available (1: END)"}
        assert server.request("GET", "/healthz")[0] == 200  # up, though not ready
    finally:
        server.stop()


def test_unknown_model_is_not_ready_and_predicts_404(model_server):
    server = AppServer(model_server.grpc_target, model="nope")
    try:
        status, body = server.request("GET", "/readyz")[:2]
        assert status == 503 and "Could not find any versions of model nope" in body["error"]
        status, body = server.predict_json({"image": data_url(png_bytes(line_image()))})
        assert status == 404
        assert body == {"error": "model server: Servable not found for request: Latest(nope)"}
        assert server.request("GET", "/healthz")[0] == 200
    finally:
        server.stop()


def test_model_server_down_is_503_and_not_ready():
    server = AppServer(f"127.0.0.1:{closed_port()}")
    try:
        status, body = server.request("GET", "/readyz")[:2]
        assert status == 503 and "is not ready" in body["error"]
        status, body = server.predict_json({"image": data_url(png_bytes(line_image()))})
        assert (status, body) == (503, {"error": "model server unavailable; see the app's log"})
    finally:
        server.stop()


# --- predictions -----------------------------------------------------------------------------


def test_json_data_url_multipart_and_bare_base64_predict_the_same(app, served):
    image = png_bytes(line_image(5, width=140))
    ((text, confidence),) = in_process_predictor().predict_batch([image])
    expected = {"pred": text, "conf": pytest.approx(confidence, rel=1e-5)}

    for status, body in (
        app.predict_json({"image": data_url(image)}),
        app.predict_json({"image": base64.b64encode(image).decode()}),
        app.predict_file(image),
    ):
        assert (status, {k: body[k] for k in expected}) == (200, expected)
        assert len(body["chars"]) == len(text) and all(0 <= c <= 1 for c in body["chars"])
    assert served.calls() == {2: (3, 3)}  # three calls of one image, to the latest version


def test_version_from_json_form_or_query_reaches_the_server(app, served):
    image = png_bytes(line_image())
    assert app.predict_json({"image": data_url(image), "version": 1})[0] == 200
    assert app.predict_file(image, fields={"version": "2"})[0] == 200
    assert app.predict_file(image, path="/v1/predict?version=1")[0] == 200
    assert served.calls() == {1: (2, 2), 2: (1, 1)}

    status, body = app.predict_json({"image": data_url(image), "version": 7})
    assert (status, body) == (
        404,
        {"error": "model server: Servable not found for request: Specific(lines, 7)"},
    )
    status, body = app.predict_json({"image": data_url(image), "version": "latest"})
    assert status == 400 and "'version' must be a positive integer" in body["error"]
    assert_still_serving(app)


@pytest.mark.parametrize("log_predictions", [False, True])
def test_prediction_is_logged_as_one_json_line(model_server, served, caplog, log_predictions):
    """One JSON line per prediction; the predicted text (user content) only with
    --log-predictions."""
    image = line_image(3)  # white paper, 20-valued strokes
    app = AppServer(model_server.grpc_target, options=AppOptions(log_predictions=log_predictions))
    try:
        with caplog.at_level(logging.INFO, logger="serving.app"):
            status, body = app.predict_json({"image": data_url(png_bytes(image)), "version": 2})
    finally:
        app.stop()
    assert status == 200
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "serving.app"]
    (line,) = [line for line in lines if line["event"] == "prediction"]
    assert line["model"] == "lines" and line["version"] == 2
    assert ("pred" in line) == log_predictions
    if log_predictions:
        assert line["pred"] == body["pred"]
    assert line["conf"] == pytest.approx(body["conf"], abs=1e-6)
    assert line["latency_ms"] > 0 and line["time"] > 0
    assert line["image"] == {
        "width": 112,
        "height": 28,
        "mean_intensity": pytest.approx(float(image.mean()), abs=0.01),
        "bytes": len(png_bytes(image)),
        "format": "PNG",
    }


def test_transparent_image_statistics_are_over_white(app, served, caplog):
    rgba = np.zeros((20, 50, 4), np.uint8)  # transparent everywhere but one black bar
    rgba[5:15, 10:20, 3] = 255
    with caplog.at_level(logging.INFO, logger="serving.app"):
        assert app.predict_file(png_bytes(rgba))[0] == 200
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if "prediction" in r.getMessage()]
    assert line["image"]["mean_intensity"] == pytest.approx(255 * (1 - 100 / 1000), abs=0.01)


# --- bad requests ----------------------------------------------------------------------------

TRUNCATED_PNG = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))[:900]


@pytest.mark.parametrize(
    "send, status, message",
    [
        (
            lambda a: a.predict_json({"image": data_url(b"this is not an image")}),
            400,
            "20 bytes of image data: not a readable image (cannot identify image file)",
        ),
        (lambda a: a.predict_json({"image": data_url(TRUNCATED_PNG)}), 400, "not a readable image"),
        (lambda a: a.predict_file(TRUNCATED_PNG), 400, "not a readable image"),
        (lambda a: a.predict_file(b""), 400, "field 'image' is empty"),
        (
            lambda a: a.predict_json({"image": "data:image/png;base64,"}),
            400,
            "field 'image' is empty",
        ),
        (lambda a: a.predict_json(b'{"image": '), 400, "request body is not valid JSON"),
        (lambda a: a.predict_json(b"\xff\xfe"), 400, "request body is not valid JSON"),
        (
            lambda a: a.predict_json(["data:image/png;base64,AAAA"]),
            400,
            "JSON body must be an object, got list",
        ),
        (lambda a: a.predict_json({"img": "x"}), 400, "missing field 'image'"),
        (
            lambda a: a.predict_json({"image": 12}),
            400,
            "field 'image' must be a base64 string, got int",
        ),
        (lambda a: a.predict_json({"image": "data:image/png,abc"}), 400, "base64 data URL"),
        (
            lambda a: a.predict_json({"image": "data:image/png;base64,@@@@"}),
            400,
            "not valid base64",
        ),
        (
            lambda a: a.predict_file(png_bytes(line_image()), field="file"),
            400,
            "missing field 'image'",
        ),
        (
            lambda a: a.request("POST", "/v1/predict", b"", {"Content-Type": "application/json"})[
                :2
            ],
            400,
            "empty request body",
        ),
        (
            lambda a: a.request("POST", "/v1/predict", b"abc", {"Content-Type": "text/plain"})[:2],
            415,
            "unsupported content type text/plain",
        ),
        (
            lambda a: a.request(
                "POST", "/v1/predict", b"--x--", {"Content-Type": "multipart/form-data"}
            )[:2],
            400,
            "without a boundary",
        ),
        (
            lambda a: a.predict_file(png_bytes(line_image(), format="WEBP")),
            415,
            "unsupported image format WEBP",
        ),
        (
            lambda a: a.predict_file(png_bytes(np.full((500, 500), 255, np.uint8))),
            413,
            "image is 500x500 pixels, more than the limit of 200000 pixels per image",
        ),
        (
            lambda a: a.predict_json({"image": data_url(b"\x89PNG" + bytes(MAX_IMAGE_BYTES))}),
            413,
            f"image is {MAX_IMAGE_BYTES + 4} bytes, more than the limit of {MAX_IMAGE_BYTES}",
        ),
        (lambda a: a.predict_file(bytes(MAX_IMAGE_BYTES * 5)), 413, "request body is"),
        (lambda a: a.request("GET", "/v1/predict")[:2], 405, "use POST for /v1/predict"),
        (
            lambda a: a.request("POST", "/healthz", b"{}", {"Content-Type": "application/json"})[
                :2
            ],
            405,
            "use POST /v1/predict",
        ),
        (lambda a: a.request("GET", "/nothing/here")[:2], 404, "no such page: /nothing/here"),
        (lambda a: a.request("GET", "/static/../app.py")[:2], 404, "no such page"),
    ],
)
def test_bad_request_gets_a_4xx_json_error_and_the_app_keeps_serving(
    send, status, message, app, served
):
    got_status, body = send(app)
    assert got_status == status
    assert isinstance(body, dict) and list(body) == ["error"] and message in body["error"], body
    assert served.requests() == 0  # refused before calling the model server
    assert_still_serving(app)


def test_huge_declared_body_is_refused_unread(app, served):
    answer = app.raw(
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000000000\r\n\r\n{"image": "'
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head
    assert "more than the limit" in json.loads(body)["error"]
    assert_still_serving(app)


def test_body_shorter_than_declared_and_missing_length(app, served):
    answer = app.raw(
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 5000\r\n\r\n{"image": "abc'
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"request body ended after 14 of 5000 bytes" in answer
    answer = app.raw(
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 411") and b"missing Content-Length" in answer
    assert_still_serving(app)


def test_errors_are_logged_as_json_lines(app, served, caplog):
    with caplog.at_level(logging.INFO, logger="serving.app"):
        app.predict_json({"img": "x"})
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "serving.app"]
    assert line == {
        "event": "error",
        "time": line["time"],
        "method": "POST",
        "path": "/v1/predict",
        "status": 400,
        "error": "missing field 'image' (a base64 data URL of the image)",
    }


# --- the web page ----------------------------------------------------------------------------


def test_page_and_its_assets_are_served(app):
    status, page, response = app.request("GET", "/")
    assert status == 200 and response.getheader("Content-Type") == "text/html; charset=utf-8"
    page = page.decode()
    for needed in ('id="canvas"', 'id="file"', 'id="predict"', 'id="pred"', 'id="conf"'):
        assert needed in page
    assert "http://" not in page and "https://" not in page  # no CDN
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        status, body, response = app.request("GET", f"/static/{asset}")
        assert status == 200 and kind in response.getheader("Content-Type") and len(body) > 100
        assert b"https://" not in body
