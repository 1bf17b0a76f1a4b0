"""The HTTP prediction app: a web page and a JSON API in front of TensorFlow Serving.

    python -m serving.app --port 8000 --serving-grpc 127.0.0.1:8500 --model lines

- `POST /v1/predict`: JSON `{"image": "data:image/png;base64,..."}` (a bare base64 string works
  too) or a multipart/form-data upload with the image in field `image`; an optional integer
  `version` (JSON field, form field or `?version=` query parameter) picks a model version.
  Answers `{"pred": "<text>", "conf": <confidence>}`.
- `GET /healthz`: the process is up. `GET /readyz`: the model is AVAILABLE on the server
  (ModelService.GetModelStatus), else 503.
- `GET /`: the page to upload or draw a line of handwriting (`serving/static/`).

Every bad request gets a 4xx `{"error": "..."}` naming the problem (413 for an image over
`--max-image-bytes` or `--max-pixels`); the model server's refusals keep their meaning (unknown
model or version: 404; server down: 503). Each prediction is logged as one JSON line with its
confidence, latency and the image's width, height, mean intensity and size, for monitoring.
"""

import argparse
import base64
import binascii
import email.parser
import email.policy
import io
import json
import logging
import mimetypes
import re
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from serving.client import DEFAULT_TIMEOUT, GrpcClient, ServingError
from serving.predictors import PredictionError, encode_image

logger = logging.getLogger("serving.app")

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_IMAGE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_PIXELS = 16 * 1024 * 1024
DRAIN_LIMIT_BYTES = 32 * 1024 * 1024  # bodies over the limit but below this are read and dropped
MODEL_FORMATS = {"PNG", "JPEG", "GIF", "BMP"}  # what the exported models decode


class RequestError(Exception):
    """A request the app refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def log_event(event: str, level: int = logging.INFO, **fields) -> None:
    """One JSON object per line: {"event": ..., "time": ..., **fields}."""
    record = {"event": event, "time": round(time.time(), 3), **fields}
    logger.log(level, json.dumps(record, sort_keys=False, default=str))


def check_pixels(data: bytes, max_pixels: int) -> None:
    """413 for an image whose header declares more than `max_pixels` pixels."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError as e:
        raise RequestError(413, f"image has too many pixels ({e})") from None
    except Exception:  # noqa: BLE001 - unreadable: encode_image says why
        return
    if width * height > max_pixels:
        raise RequestError(413, f"image is {width}x{height} pixels, more than {max_pixels}")


def image_stats(data: bytes, max_pixels: int) -> dict:
    """Width, height, mean intensity (0-255, gray) and size of an already validated image."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise RequestError(413, f"image is {width}x{height} pixels, more than {max_pixels}")
        if image.format not in MODEL_FORMATS:
            raise RequestError(
                415, f"unsupported image format {image.format}; send PNG, JPEG, GIF or BMP"
            )
        image_format = image.format
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    # Gray, composited over white paper as the model does (0: black, 255: white).
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = rgba[..., 3] / 255.0
    pixels = gray * alpha + 255.0 * (1.0 - alpha)
    return {
        "width": width,
        "height": height,
        "mean_intensity": round(float(pixels.mean()), 2),
        "bytes": len(data),
        "format": image_format,
    }


def decode_data_url(value) -> bytes:
    """Bytes of `data:image/...;base64,<data>` or of bare base64."""
    if not isinstance(value, str):
        raise RequestError(
            400, f"field 'image' must be a base64 string, got {type(value).__name__}"
        )
    if value.startswith("data:"):
        header, sep, value = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise RequestError(
                400, "field 'image' must be a base64 data URL (data:image/png;base64,...)"
            )
    value = value.strip()
    if not value:
        raise RequestError(400, "field 'image' is empty")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError(400, f"field 'image' is not valid base64 ({e})") from None


def parse_multipart(content_type: str, body: bytes) -> dict:
    """{field name: bytes} of a multipart/form-data body."""
    if "boundary=" not in content_type:
        raise RequestError(400, "multipart/form-data request without a boundary")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise RequestError(400, "malformed multipart/form-data body")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


def parse_version(value):
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise RequestError(400, f"'version' must be a positive integer, got {value!r}")
    return int(str(value).strip())


class PredictionApp:
    """What the handler calls; holds the gRPC client and the limits."""

    def __init__(
        self,
        client: GrpcClient,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.client = client
        self.max_image_bytes = max_image_bytes
        self.max_pixels = max_pixels
        # A base64 JSON or multipart body carries some overhead over the image itself.
        self.max_body_bytes = max_image_bytes * 4 // 3 + 64 * 1024

    def read_request(self, content_type: str, body: bytes, query: dict) -> tuple:
        """(image bytes, version or None) of a predict request."""
        media_type = content_type.split(";")[0].strip().lower()
        if media_type == "application/json":
            try:
                payload = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise RequestError(400, f"request body is not valid JSON ({e})") from None
            if not isinstance(payload, dict):
                raise RequestError(
                    400, f"JSON body must be an object, got {type(payload).__name__}"
                )
            if "image" not in payload:
                raise RequestError(400, "missing field 'image' (a base64 data URL of the image)")
            image = decode_data_url(payload["image"])
            version = parse_version(payload.get("version", query.get("version")))
        elif media_type == "multipart/form-data":
            fields = parse_multipart(content_type, body)
            if "image" not in fields:
                raise RequestError(400, "missing field 'image' (the uploaded image file)")
            image = fields["image"]
            version = parse_version(fields.get("version", query.get("version")))
        else:
            raise RequestError(
                415,
                f"unsupported content type {media_type or '(none)'}; "
                "send application/json or multipart/form-data",
            )
        if not image:
            raise RequestError(400, "field 'image' is empty")
        if len(image) > self.max_image_bytes:
            raise RequestError(
                413, f"image is {len(image)} bytes, more than the limit of {self.max_image_bytes}"
            )
        return image, version

    def predict(self, content_type: str, body: bytes, query: dict) -> dict:
        start = time.perf_counter()
        image, version = self.read_request(content_type, body, query)
        try:
            check_pixels(image, self.max_pixels)  # from the header, before decoding it all
            encode_image(image)
            stats = image_stats(image, self.max_pixels)
        except PredictionError as e:
            # e.g. "123 bytes of image data: not a readable image (cannot identify image file)"
            raise RequestError(
                400, re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e))
            ) from None
        except Image.DecompressionBombError as e:
            raise RequestError(413, f"image has too many pixels ({e})") from None
        try:
            (prediction,) = self.client.predict([image], version=version)
        except ServingError as e:
            raise RequestError(_app_status(e), f"model server: {e.message}") from None
        result = {"pred": prediction.text, "conf": prediction.confidence}
        log_event(
            "prediction",
            model=self.client.model,
            version=version if version is not None else self.client.version,
            label=self.client.label,
            pred=prediction.text,
            conf=prediction.confidence,
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            image=stats,
        )
        return result

    def ready(self) -> tuple:
        try:
            versions = self.client.status()
        except ServingError as e:
            return 503, {"error": f"model {self.client.model!r} is not ready: {e.message}"}
        available = [s["version"] for s in versions if s["state"] == "AVAILABLE"]
        if not available:
            states = ", ".join(f"{s['version']}: {s['state']}" for s in versions) or "no versions"
            return 503, {"error": f"model {self.client.model!r} is not available ({states})"}
        return 200, {"status": "ready", "model": self.client.model, "versions": available}


def _app_status(error: ServingError) -> int:
    """The model server's errors as the app's: 4xx keep their meaning, the rest are 502/503/504."""
    if 400 <= error.http_status < 500:
        return error.http_status
    if error.http_status in (503, 504):
        return error.http_status
    return 502


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "text-recognizer"
    timeout = 60  # seconds a client may take to send its request
    app: PredictionApp  # set by make_server

    # --- plumbing -----------------------------------------------------------------------------

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and delayed
        # ACKs hold each keep-alive response back ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # the structured log lines replace the access log
        pass

    def _send(self, status: int, body: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: dict, close: bool = False) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json", close)

    def _error(self, status: int, message: str, close: bool = False) -> None:
        level = logging.ERROR if status >= 500 else logging.WARNING
        log_event(
            "error",
            level,
            method=self.command,
            path=urlsplit(self.path).path,
            status=status,
            error=message,
        )
        self._json(status, {"error": message}, close)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "chunked requests are not supported; send a Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "missing Content-Length header")
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            raise RequestError(400, f"bad Content-Length {length!r}") from None
        if length == 0:
            raise RequestError(400, "empty request body; send an image")
        if length > self.app.max_body_bytes:
            # Read and drop a moderately large body so that the client gets our answer (closing
            # on unread data would reset the connection); a huge one is not worth reading.
            if length <= DRAIN_LIMIT_BYTES:
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    left -= len(chunk)
                self._body_pending = left > 0
            raise RequestError(
                413,
                f"request body is {length} bytes, more than the limit of {self.app.max_body_bytes} "
                f"(images up to {self.app.max_image_bytes} bytes)",
            )
        body = self.rfile.read(length)
        self._body_pending = False
        if len(body) < length:
            raise RequestError(400, f"request body ended after {len(body)} of {length} bytes")
        return body

    def _handle(self, route) -> None:
        self._body_pending = self.command == "POST"
        try:
            try:
                route()
            except RequestError as e:
                # An unread body (too large, unreadable) must not be parsed as the next request.
                self._error(e.status, e.message, close=self._body_pending or e.status >= 500)
            except (ConnectionError, TimeoutError):
                raise
            except Exception as e:  # keep serving; name what broke, without a traceback
                logger.exception("unhandled error")
                self._error(500, f"internal error: {type(e).__name__}", close=True)
        except (ConnectionError, TimeoutError):  # the client went away
            self.close_connection = True

    # --- routes -------------------------------------------------------------------------------

    def do_GET(self):
        self._handle(self._get)

    def do_HEAD(self):
        self._handle(self._get)

    def do_POST(self):
        self._handle(self._post)

    def _get(self):
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._json(200, {"status": "ok"})
        elif path == "/readyz":
            status, payload = self.app.ready()
            self._json(status, payload)
        elif path in ("/", "/index.html"):
            self._static("index.html")
        elif path.startswith("/static/"):
            self._static(path[len("/static/") :])
        elif path == "/v1/predict":
            raise RequestError(405, "use POST for /v1/predict")
        else:
            raise RequestError(404, f"no such page: {path}")

    def _static(self, name: str) -> None:
        files = (
            {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}
        )
        if name not in files:  # only the files in static/ itself, by name: no path tricks
            raise RequestError(404, f"no such page: /static/{name}")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._send(200, files[name].read_bytes(), content_type)

    def _post(self):
        url = urlsplit(self.path)
        if url.path != "/v1/predict":
            raise RequestError(
                404 if url.path not in ("/healthz", "/readyz", "/") else 405,
                f"no POST endpoint {url.path}; use POST /v1/predict",
            )
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._read_body()
        result = self.app.predict(self.headers.get("Content-Type", ""), body, query)
        self._json(200, result)


def make_server(
    app: PredictionApp, host: str = "127.0.0.1", port: int = 8000
) -> ThreadingHTTPServer:
    """A threaded HTTP server for `app` (port 0: any free port; see server.server_address)."""
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m serving.app", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--serving-grpc",
        default="127.0.0.1:8500",
        metavar="HOST:PORT",
        help="TF Serving's gRPC address",
    )
    parser.add_argument("--model", default="lines", help="served model name")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="model version (default: the server's latest)")
    which.add_argument("--label", help="model version label")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for the model server",
    )
    parser.add_argument("--max-image-bytes", type=int, default=DEFAULT_MAX_IMAGE_BYTES)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s", stream=sys.stderr)
    client = GrpcClient(args.serving_grpc, args.model, args.version, args.label, args.timeout)
    app = PredictionApp(client, args.max_image_bytes, args.max_pixels)
    server = make_server(app, args.host, args.port)
    host, port = server.server_address[:2]
    log_event(
        "started",
        url=f"http://{host}:{port}/",
        serving_grpc=args.serving_grpc,
        model=args.model,
        version=args.version,
        label=args.label,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
