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

The app is a Starlette application served by uvicorn (`serving.asgi`); the model server is
called by gRPC on Starlette's thread pool, so a slow model server does not block the page.
"""

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from common.push_layout import LINES_MODEL
from serving.app_requests import check_pixels, image_stats, read_request, refused
from serving.asgi import error_response, read_body, serve
from serving.client import DEFAULT_TIMEOUT
from serving.errors import ServingError
from serving.images import PredictionError, encode_image

if TYPE_CHECKING:  # the gRPC client loads TensorFlow (its protos): only main() constructs one
    from serving.grpc_client import GrpcClient

logger = logging.getLogger("serving.app")

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_IMAGE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_PIXELS = 16 * 1024 * 1024
DRAIN_LIMIT_BYTES = 32 * 1024 * 1024  # bodies over the limit but below this are read and dropped
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def log_event(event: str, level: int = logging.INFO, **fields) -> None:
    """One JSON object per line: {"event": ..., "time": ..., **fields}."""
    record = {"event": event, "time": round(time.time(), 3), **fields}
    logger.log(level, json.dumps(record, sort_keys=False, default=str))


class PredictionApp:
    """What the routes call: the gRPC client, the limits, and the checks before a prediction."""

    def __init__(
        self,
        client: "GrpcClient",
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.client = client
        self.max_image_bytes = max_image_bytes
        self.max_pixels = max_pixels
        # A base64 JSON or multipart body carries some overhead over the image itself.
        self.max_body_bytes = max_image_bytes * 4 // 3 + 64 * 1024

    def predict(self, image: bytes, version: int | None) -> dict:
        """{"pred": text, "conf": confidence} for a checked image; logs the prediction."""
        start = time.perf_counter()
        try:
            check_pixels(image, self.max_pixels)  # from the header, before decoding it all
            encode_image(image)
            stats = image_stats(image, self.max_pixels)
        except PredictionError as e:
            # e.g. "123 bytes of image data: not a readable image (cannot identify image file)"
            message = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e))
            raise refused(400, message) from None
        except Image.DecompressionBombError as e:
            raise refused(413, f"image has too many pixels ({e})") from None
        try:
            (prediction,) = self.client.predict([image], version=version)
        except ServingError as e:
            raise refused(_app_status(e), f"model server: {e.message}") from None
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
        return {"pred": prediction.text, "conf": prediction.confidence}

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


def make_app(app: PredictionApp) -> Starlette:
    """The routes (GET /, /static/<file>, /healthz, /readyz; POST /v1/predict) over `app`."""
    static_files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}

    def refuse(request: Request, error: ServingError, close: bool = False) -> Response:
        level = logging.ERROR if error.http_status >= 500 else logging.WARNING
        log_event("error", level, method=request.method, path=request.url.path,
                  status=error.http_status, error=error.message)
        response = error_response(error, close)
        response.headers.update(NO_STORE)
        return response

    async def predict(request: Request) -> Response:
        try:
            body = await read_body(
                request, app.max_body_bytes, f"images up to {app.max_image_bytes} bytes",
                DRAIN_LIMIT_BYTES, require_length=True)
        except ServingError as e:  # the body is left unread: it must not become a request
            return refuse(request, e, close=True)
        try:
            image, version = await read_request(request, body, app.max_image_bytes)
            return JSONResponse(await run_in_threadpool(app.predict, image, version),
                                headers=NO_STORE)
        except ServingError as e:
            return refuse(request, e)
        except Exception as e:  # keep serving; name what broke, without a traceback
            logger.exception("unhandled error")
            return refuse(request, refused(500, f"internal error: {type(e).__name__}"), close=True)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    async def readyz(request: Request) -> Response:
        status, payload = await run_in_threadpool(app.ready)
        return JSONResponse(payload, status, headers=NO_STORE)

    async def static(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in static_files:  # only the files in static/ itself, by name: no path tricks
            raise HTTPException(404)
        return FileResponse(static_files[name], headers=NO_STORE)

    async def unrouted(request: Request, exc: HTTPException) -> Response:
        path = request.url.path
        if request.method not in ("GET", "HEAD"):
            message = f"no POST endpoint {path}; use POST /v1/predict"
        elif path == "/v1/predict":
            message = "use POST for /v1/predict"
        else:
            message = f"no such page: {path}"
        return refuse(request, refused(exc.status_code, message))

    routes = [
        Route("/v1/predict", predict, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/", static),
        Route("/index.html", static),
        Route("/static/{name:path}", static),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: unrouted})


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
    parser.add_argument("--model", default=LINES_MODEL, help="served model name")
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
    from serving.grpc_client import GrpcClient

    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s", stream=sys.stderr)
    client = GrpcClient(args.serving_grpc, args.model, args.version, args.label, args.timeout)
    app = PredictionApp(client, args.max_image_bytes, args.max_pixels)
    log_event(
        "started",
        url=f"http://{args.host}:{args.port}/",
        serving_grpc=args.serving_grpc,
        model=args.model,
        version=args.version,
        label=args.label,
    )
    try:
        serve(make_app(app), args.host, args.port)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
