"""The HTTP prediction app: a web page and a JSON API in front of TensorFlow Serving.

    python -m serving.app --port 8000 --serving-grpc 127.0.0.1:8500 --model lines

- `POST /v1/predict`: JSON `{"image": "data:image/png;base64,..."}` (a bare base64 string works
  too) or a multipart/form-data upload with the image in field `image`; an optional integer
  `version` (JSON field, form field or `?version=` query parameter) picks a model version.
  Answers `{"pred": "<text>", "conf": <confidence>, "chars": [<confidence per character>]}`.
- `POST /v1/pages`: the same kinds of body with a page image: the served line detector finds its
  lines, the line model reads them (serving.paragraph). Answers `{"width", "height", "text",
  "lines": [{"polygon": [[x, y], ...], "box": [left, top, right, bottom], "text", "conf",
  "detection", "chars"}, ...]}`, lines top to bottom, coordinates in the page's pixels.
- `GET /v1/predict?image_url=...` (FSDL's form): the image fetched from a host on the
  `--image-url-host` allow-list (403 for any other; none by default), size- and time-limited.
- `GET /healthz`: the process is up. `GET /readyz`: the model is AVAILABLE on the server
  (ModelService.GetModelStatus), else 503.
- `GET /`: the page to upload or draw a line of handwriting (`serving/static/`).

Every bad request gets a 4xx `{"error": "..."}` naming the problem (413 for a body or image over
`--max-image-bytes`, or an image whose header declares more than `--max-pixels`, checked before
decoding); the model server's refusals keep their meaning (unknown model or version: 404; server
down: 503) without its address or internals, which go to the log. Each prediction is logged as
one JSON line with its confidence, latency and the image's width, height, mean intensity and
size, for monitoring; the predicted text (user content) only with `--log-predictions`.

Safe defaults, opt-in openings: it listens on 127.0.0.1; `--token` (or env APP_TOKEN) requires
`Authorization: Bearer <token>` on /v1/predict (the page, which is public, sends the token it was
opened with as `/#token=<token>`); `--cors-origin` (repeatable) lets pages from those origins
call the API; oversized bodies are read and dropped so that the client sees the 413.

The app is a Starlette application served by uvicorn (`serving.asgi`); the model server is
called by gRPC on Starlette's thread pool, so a slow model server does not block the page.
"""

import argparse
import dataclasses
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from common.push_layout import LINES_MODEL
from common.signatures import DEFAULT_MAX_PIXELS
from serving.app_requests import (
    fetch_image_url,
    image_stats,
    parse_version,
    read_request,
    refused,
)
from serving.asgi import error_response, read_body, serve
from serving.client import DEFAULT_TIMEOUT
from serving.errors import ServingError, public_message
from serving.images import PredictionError, check_header
from serving.paragraph import ParagraphTextRecognizer

if TYPE_CHECKING:  # the gRPC client loads TensorFlow (its protos): only main() constructs one
    from serving.grpc_client import GrpcClient

logger = logging.getLogger("serving.app")

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_IMAGE_BYTES = 4 * 1024 * 1024
DRAIN_LIMIT_BYTES = 256 * 1024 * 1024  # bodies over the limit but below this are read and dropped
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def log_event(event: str, level: int = logging.INFO, **fields) -> None:
    """One JSON object per line: {"event": ..., "time": ..., **fields}."""
    record = {"event": event, "time": round(time.time(), 3), **fields}
    logger.log(level, json.dumps(record, sort_keys=False, default=str))


@dataclasses.dataclass(frozen=True)
class AppOptions:
    """What the app accepts and from whom; every opening is opt-in (see the module docstring)."""

    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    token: str | None = None  # required as "Authorization: Bearer <token>" on /v1/predict
    cors_origins: tuple = ()
    image_url_hosts: frozenset = frozenset()
    log_predictions: bool = False  # log the predicted text (user content)


class PredictionApp:
    """What the routes call: the gRPC client, the limits, and the checks before a prediction."""

    def __init__(
        self,
        client: "GrpcClient",
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        options: AppOptions | None = None,
        pages: ParagraphTextRecognizer | None = None,
    ):
        self.client = client
        self.pages = pages  # POST /v1/pages: the detector and this app's line model
        self.options = options or AppOptions(max_image_bytes, max_pixels)
        self.max_image_bytes = self.options.max_image_bytes
        self.max_pixels = self.options.max_pixels
        # A base64 JSON or multipart body carries some overhead over the image itself.
        self.max_body_bytes = self.max_image_bytes * 4 // 3 + 64 * 1024

    def authorized(self, authorization: str) -> bool:
        if not self.options.token:
            return True
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), self.options.token.encode()
        )

    def fetch(self, url: str) -> bytes:
        return fetch_image_url(url, self.options.image_url_hosts, self.max_image_bytes)

    def predict(self, image: bytes, version: int | None) -> dict:
        """{"pred": text, "conf": confidence, "chars": [confidence per character]} for a checked
        image; logs the prediction (its text only with --log-predictions)."""
        start = time.perf_counter()
        check_header(image, self.max_pixels)  # 413 from the header, before decoding anything
        stats = image_stats(image)
        try:
            (prediction,) = self.client.predict([image], version=version)
        except ServingError as e:
            raise model_server_error(e) from None
        fields = {"pred": prediction.text} if self.options.log_predictions else {}
        log_event(
            "prediction",
            model=self.client.model,
            version=version if version is not None else self.client.version,
            label=self.client.label,
            **fields,
            conf=prediction.confidence,
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            image=stats,
        )
        return {
            "pred": prediction.text,
            "conf": prediction.confidence,
            "chars": list(prediction.character_confidences),
        }

    def read_page(self, image: bytes, version: int | None) -> dict:
        """RecognizedPage.to_json() of a checked page image; logs the page (its text only with
        --log-predictions)."""
        if self.pages is None:
            raise refused(404, "this app reads no pages (it was started without a line detector)")
        if version is not None:
            raise refused(
                400, "/v1/pages takes no 'version': it reads with the app's models' versions"
            )
        start = time.perf_counter()
        check_header(image, self.max_pixels)
        stats = image_stats(image)
        try:
            page = self.pages.recognize(image, name="page image")
        except PredictionError as e:
            raise refused(400, str(e)) from None
        except ServingError as e:
            raise model_server_error(e) from None
        record: dict = {"lines": len(page.lines)}
        if self.options.log_predictions:
            record["text"] = page.text
        latency_ms = round((time.perf_counter() - start) * 1000, 2)
        log_event("page", **record, latency_ms=latency_ms, image=stats)
        return page.to_json()

    def ready(self) -> tuple:
        try:
            versions = self.client.status()
        except ServingError as e:
            reason = model_server_error(e).message
            return 503, {"error": f"model {self.client.model!r} is not ready: {reason}"}
        available = [s["version"] for s in versions if s["state"] == "AVAILABLE"]
        if not available:
            states = ", ".join(f"{s['version']}: {s['state']}" for s in versions) or "no versions"
            return 503, {"error": f"model {self.client.model!r} is not available ({states})"}
        return 200, {"status": "ready", "model": self.client.model, "versions": available}


def model_server_error(error: ServingError) -> ServingError:
    """The model server's refusal as the app's: a 4xx keeps its status and its message (without
    TF internals); anything else is 502/503/504 with a generic message, the details (which may
    name the backend's address) going to the log only."""
    if 400 <= error.http_status < 500:
        return refused(error.http_status, f"model server: {public_message(error.message)}")
    log_event("model_server_error", logging.ERROR, status=str(error.status), error=error.message)
    status = error.http_status if error.http_status in (503, 504) else 502
    reason = {503: "unavailable", 504: "did not answer in time"}.get(status, "failed")
    return refused(status, f"model server {reason}; see the app's log")


def make_app(app: PredictionApp) -> Starlette:
    """The routes (GET /, /static/<file>, /healthz, /readyz; POST /v1/predict, /v1/pages)
    over `app`."""
    static_files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}

    def refuse(
        request: Request, error: ServingError, close: bool = False, headers: dict | None = None
    ) -> Response:
        level = logging.ERROR if error.http_status >= 500 else logging.WARNING
        log_event(
            "error",
            level,
            method=request.method,
            path=request.url.path,
            status=error.http_status,
            error=error.message,
        )
        response = error_response(error, close)
        response.headers.update({**NO_STORE, **(headers or {})})
        return response

    async def answer(request: Request, work) -> Response:
        """`work(image, version)` as JSON for a POSTed (or allowed ?image_url=) image, checked."""
        try:
            if request.method == "POST":
                body = await read_body(
                    request,
                    app.max_body_bytes,
                    f"images up to {app.max_image_bytes} bytes",
                    DRAIN_LIMIT_BYTES,
                    require_length=True,
                )
        except ServingError as e:  # the body is left unread: it must not become a request
            return refuse(request, e, close=True)
        try:
            if not app.authorized(request.headers.get("authorization", "")):
                return refuse(
                    request,
                    refused(
                        401,
                        "missing or wrong bearer token (header 'Authorization: Bearer <token>')",
                    ),
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if request.method == "POST":
                image, version = await read_request(request, body, app.max_image_bytes)
            elif "image_url" in request.query_params:
                image = await run_in_threadpool(app.fetch, request.query_params["image_url"])
                version = parse_version(request.query_params.get("version"))
            else:
                return refuse(
                    request,
                    refused(
                        405,
                        f"use POST for {request.url.path} "
                        "(or GET with ?image_url= from an allowed host)",
                    ),
                )
            return JSONResponse(await run_in_threadpool(work, image, version), headers=NO_STORE)
        except ServingError as e:
            return refuse(request, e)
        except Exception as e:  # keep serving; name what broke, without a traceback
            logger.exception("unhandled error")
            return refuse(request, refused(500, f"internal error: {type(e).__name__}"), close=True)

    async def predict(request: Request) -> Response:
        return await answer(request, app.predict)

    async def pages(request: Request) -> Response:
        return await answer(request, app.read_page)

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

    async def unrouted(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # registered for HTTPException only
        path = request.url.path
        if request.method not in ("GET", "HEAD"):
            message = f"no {request.method} endpoint {path}; use POST /v1/predict"
        else:
            message = f"no such page: {path}"
        return refuse(request, refused(exc.status_code, message))

    routes = [
        Route("/v1/predict", predict, methods=["GET", "POST"]),
        Route("/v1/pages", pages, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/", static),
        Route("/index.html", static),
        Route("/static/{name:path}", static),
    ]
    middleware = []
    if app.options.cors_origins:  # browsers refuse cross-origin calls unless listed here
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(app.options.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: unrouted}
    )


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
        "--detector-version",
        type=int,
        help="line detector version for /v1/pages (default: the server's latest)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for the model server",
    )
    parser.add_argument(
        "--max-image-bytes",
        type=int,
        default=DEFAULT_MAX_IMAGE_BYTES,
        help=f"largest image (and so body) accepted ({DEFAULT_MAX_IMAGE_BYTES})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="largest image by its header's width x height, checked before "
        f"decoding ({DEFAULT_MAX_PIXELS})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("APP_TOKEN") or None,
        help="require 'Authorization: Bearer TOKEN' on /v1/predict (default: "
        "env APP_TOKEN; none: open); open the page as /#token=TOKEN",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages from ORIGIN (e.g. https://example.org) call the API "
        "(repeatable; default: none)",
    )
    parser.add_argument(
        "--image-url-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow GET /v1/predict?image_url= from HOST (repeatable; default: none, 403)",
    )
    parser.add_argument(
        "--log-predictions",
        action="store_true",
        help="log the predicted text with each prediction (user content; off)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from serving.grpc_client import GrpcClient
    from serving.paragraph import over_grpc

    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s", stream=sys.stderr)
    client = GrpcClient(args.serving_grpc, args.model, args.version, args.label, args.timeout)
    app = PredictionApp(
        client,
        options=AppOptions(
            args.max_image_bytes,
            args.max_pixels,
            args.token,
            tuple(args.cors_origin),
            frozenset(host.lower() for host in args.image_url_host),
            args.log_predictions,
        ),
        pages=over_grpc(
            args.serving_grpc, args.detector_version, timeout=args.timeout, reader=client
        ),
    )
    log_event(
        "started",
        url=f"http://{args.host}:{args.port}/",
        serving_grpc=args.serving_grpc,
        model=args.model,
        version=args.version,
        label=args.label,
        detector_version=args.detector_version,
        token=bool(args.token),
        cors_origins=args.cors_origin,
        image_url_hosts=args.image_url_host,
        log_predictions=args.log_predictions,
    )
    try:
        serve(make_app(app), args.host, args.port)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
