"""The app's safe defaults and opt-in openings: 413 for an oversized body that the client does
see, the bearer token, the CORS allow-list, FSDL's `GET /v1/predict?image_url=` only from
allowed hosts, and the compose file publishing TF Serving on the loopback only."""

import http.server
import threading
from pathlib import Path

import pytest
import requests
import yaml
from test_app import AppServer, data_url
from test_serving_fuzz import OK_PNG, bomb_png

from serving.app import AppOptions

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def secured(model_server):
    server = AppServer(
        model_server.grpc_target,
        options=AppOptions(
            token="s3cret",
            cors_origins=("https://pages.example",),
            image_url_hosts=frozenset({"127.0.0.1"}),
        ),
    )
    yield server
    server.stop()


def test_a_50_mb_body_gets_a_413_that_the_client_sees(model_server, served):
    server = AppServer(model_server.grpc_target)
    try:
        response = requests.post(
            f"http://127.0.0.1:{server.port}/v1/predict",
            data=b"\0" * (50 * 1024 * 1024),
            timeout=60,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413  # not a ConnectionError (broken pipe)
        assert "more than the limit" in response.json()["error"]
        assert server.predict_json({"image": data_url(OK_PNG)})[0] == 200
    finally:
        server.stop()
    assert served.requests() == 1


def test_token_is_required_on_the_api_only(secured, served):
    body = {"image": data_url(OK_PNG)}
    status, answer = secured.predict_json(body)
    assert status == 401 and "bearer token" in answer["error"]
    for wrong in ("Bearer nope", "Basic s3cret", "s3cret"):
        assert (
            secured.request(
                "POST", "/v1/predict", data_url(OK_PNG).encode(), {"Authorization": wrong}
            )[0]
            == 401
        )
    status, answer, _ = secured.request(
        "POST",
        "/v1/predict",
        f'{{"image": "{data_url(OK_PNG)}"}}'.encode(),
        {"Content-Type": "application/json", "Authorization": "Bearer s3cret"},
    )
    assert status == 200 and set(answer) == {"pred", "conf", "chars"}
    assert secured.request("GET", "/")[0] == 200  # the page and the health checks stay open
    assert secured.request("GET", "/healthz")[0] == 200
    assert served.requests() == 1


def test_cors_only_for_listed_origins(secured):
    def preflight(origin: str):
        return secured.request(
            "OPTIONS",
            "/v1/predict",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )[2]

    allowed = preflight("https://pages.example")
    assert allowed.status == 200
    assert allowed.getheader("Access-Control-Allow-Origin") == "https://pages.example"
    refused = preflight("https://evil.example")
    assert refused.status == 400 and refused.getheader("Access-Control-Allow-Origin") is None
    # A simple (not preflighted) request from a listed origin is answered with the header too.
    _, _, response = secured.request("GET", "/healthz", headers={"Origin": "https://pages.example"})
    assert response.getheader("Access-Control-Allow-Origin") == "https://pages.example"


def test_no_cors_headers_by_default(model_server):
    server = AppServer(model_server.grpc_target)
    try:
        _, _, response = server.request("GET", "/healthz", headers={"Origin": "https://x.example"})
        assert response.getheader("Access-Control-Allow-Origin") is None
    finally:
        server.stop()


@pytest.fixture(scope="module")
def image_host():
    """An HTTP server on 127.0.0.1 serving /line.png, /huge.png (a pixel bomb), /big.bin."""
    files = {
        "/line.png": OK_PNG,
        "/huge.png": bomb_png(20000, 20000, rows=1),
        "/big.bin": b"\0" * (5 * 1024 * 1024),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/")
                self.end_headers()
                return
            data = files.get(self.path)
            self.send_response(200 if data else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("/line.png", 200, None),
        ("/huge.png", 413, "20000x20000 pixels"),
        ("/big.bin", 413, "image_url is more than the limit"),
        ("/missing.png", 502, "image_url answered HTTP 404"),
        ("/redirect", 502, "image_url answered HTTP 302"),
    ],
)
def test_image_url_from_an_allowed_host(secured, image_host, path, status, message):
    got, answer, _ = secured.request(
        "GET",
        f"/v1/predict?image_url=http://{image_host}{path}",
        headers={"Authorization": "Bearer s3cret"},
    )
    assert got == status, answer
    if message:
        assert message in answer["error"]
    else:
        assert set(answer) == {"pred", "conf", "chars"}


def test_image_url_from_other_hosts_is_forbidden(secured, model_server, image_host):
    port = image_host.split(":")[1]
    for url in (f"http://localhost:{port}/line.png", "http://169.254.169.254/latest/meta-data"):
        got, answer, _ = secured.request(
            "GET", f"/v1/predict?image_url={url}", headers={"Authorization": "Bearer s3cret"}
        )
        assert got == 403 and "is not allowed" in answer["error"]
    got, answer, _ = secured.request(
        "GET",
        "/v1/predict?image_url=file:///etc/passwd",
        headers={"Authorization": "Bearer s3cret"},
    )
    assert got == 400 and "http://" in answer["error"]
    default = AppServer(model_server.grpc_target)  # no --image-url-host: nothing is allowed
    try:
        url = f"http://{image_host}/line.png"
        assert default.request("GET", f"/v1/predict?image_url={url}")[0] == 403
    finally:
        default.stop()


def test_compose_publishes_tf_serving_on_the_loopback_only():
    compose = yaml.safe_load((REPO / "serving" / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        for port in service.get("ports", []):
            host, _, _ = str(port).partition(":")
            assert host == "127.0.0.1", f"{port} is published on every interface"


def test_app_command_line_defaults_are_closed(monkeypatch):
    from serving.app import _parse_args

    monkeypatch.delenv("APP_TOKEN", raising=False)
    args = _parse_args([])
    assert (args.host, args.token, args.cors_origin, args.image_url_host, args.log_predictions) == (
        "127.0.0.1",
        None,
        [],
        [],
        False,
    )
    monkeypatch.setenv("APP_TOKEN", "from-env")
    assert _parse_args([]).token == "from-env"
