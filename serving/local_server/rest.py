"""TF Serving's REST API (`/v1/models/...`) on Starlette, over the model manager.

TF Serving's URL grammar (`/v1/models/<name>[/versions/<v>|/labels/<l>][:predict|/metadata]`) is
matched here with its own patterns, on the raw path, so that its error messages and statuses are
TF Serving's; everything else (HTTP, the body and its size limit) is Starlette's and uvicorn's.
The model runs on Starlette's thread pool, off the event loop.
"""

import json
import logging
import re
import urllib.parse

import grpc
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, request_response

from serving.asgi import error_response, read_body
from serving.errors import INTERNAL_ERROR, ServingError, invalid, not_found
from serving.local_server.manager import ModelManager
from serving.local_server.models import INT64_MAX, metadata_response
from serving.local_server.rest_json import (
    JsonDecoder,
    metadata_json,
    request_inputs,
    response_json,
    short,
)

logger = logging.getLogger("serving.local_server")
MiB = 1024 * 1024
# A body over --max_request_bytes is read and discarded up to this size (so the client sees the
# 413 rather than a reset connection); beyond it the connection is simply closed.
_DRAIN_LIMIT = 256 * MiB

_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_MODEL_IN_PATH = re.compile(r"/v1/models/([^/:]+)", re.IGNORECASE)


class RestApi:
    """TF Serving's REST API over a ModelManager: (method, path, body) -> JSON answer, or a
    ServingError. `predict` (servable, signature name, inputs) -> outputs runs the model:
    LocalModelServer.predict, which batches when batching is on."""

    def __init__(self, manager: ModelManager, max_image_bytes: int, predict):
        self.manager = manager
        self.decoder = JsonDecoder(max_image_bytes)
        self._predict = predict

    def handle(self, method: str, path: str, body: bytes) -> dict:
        if not _API_PATH.fullmatch(path):
            raise not_found(f"No API at {path}; this server answers /v1/models/...")
        if method == "POST":
            match = _PREDICT_PATH.fullmatch(path)
        elif method == "GET":
            match = _STATUS_PATH.fullmatch(path)
        else:
            match = None
        if match is None:
            raise invalid(f"Malformed request: {method} {path}")
        name, version_text, label, action = match.groups()
        name = urllib.parse.unquote(name) if name else ""
        label = urllib.parse.unquote(label) if label else None
        version = None
        if version_text:
            version = int(version_text)
            if version > INT64_MAX:
                raise invalid(f"Failed to convert version: {version_text} to numeric.")
        if method == "POST":
            if action.lower() != "predict":
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f":{action} is not served by the local server; use :predict",
                )
            return self.predict(name, version, label, body)
        if not name:
            raise invalid("Missing model name in request.")
        if action:
            servable = self.manager.resolve(name, version, label)
            return metadata_json(metadata_response(servable))
        # As in TF Serving, a status request by label reports every version of the model.
        return json_format.MessageToDict(
            self.manager.status(name, version), including_default_value_fields=True
        )

    def predict(self, name, version, label, body: bytes) -> dict:
        if not body:
            raise invalid("JSON Parse error: The document is empty")
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError
            raise invalid(f"JSON Parse error: {e}") from None
        if not isinstance(doc, dict):
            raise invalid(f"JSON Value: {short(doc)} Is not object")
        signature_name = doc.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid("'signature_name' key must be a string value.")
        servable = self.manager.resolve(name, version, label)
        signature_name, signature_def = servable.signature(signature_name)
        inputs, row_format = request_inputs(doc, signature_def.inputs, self.decoder)
        outputs = self._predict(servable, signature_name, inputs)
        return response_json(outputs, row_format)


def rest_app(owner) -> Starlette:
    """The REST endpoint of a LocalModelServer (`owner`): TF Serving's API, and the Prometheus
    metrics at `owner.metrics_path` when set."""

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(owner.metrics.render(owner.manager))

    async def api(request: Request) -> Response:
        path = request.scope["raw_path"].decode("latin-1")
        named = _MODEL_IN_PATH.match(path)
        model = urllib.parse.unquote(named.group(1)) if named else ""
        try:
            body = await read_body(
                request, owner.max_request_bytes, "--max_request_bytes", _DRAIN_LIMIT
            )
        except ServingError as e:  # the body is left unread: it must not become a request
            owner.metrics.count(model, e.code.name)
            return error_response(e, close=True, indent=1)
        try:
            payload = await run_in_threadpool(owner.rest.handle, request.method, path, body)
        except ServingError as e:
            owner.metrics.count(model, e.code.name)
            return error_response(e, indent=1)
        except Exception:  # a bug must cost one request, not the server
            logger.exception("%s %s failed", request.method, path)
            owner.metrics.count(model, "INTERNAL")
            return error_response(INTERNAL_ERROR, indent=1)
        owner.metrics.count(model, "OK")
        return Response(json.dumps(payload, indent=1), media_type="application/json")

    app = Starlette(routes=[Route(owner.metrics_path, metrics)] if owner.metrics_path else [])
    # Every other request is the API's, whatever its path holds (a route pattern would not
    # match, say, an encoded newline, and Starlette would answer a plain-text 404).
    app.router.default = request_response(api)
    return app
