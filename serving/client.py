"""Clients for a model served by TensorFlow Serving (or anything speaking its APIs).

- `RestClient("http://127.0.0.1:8501", "lines")`: `POST /v1/models/<name>[/versions/<v> |
  /labels/<l>]:predict` with `{"instances": [{"image_bytes": {"b64": ...}}, ...]}`.
- `GrpcClient("127.0.0.1:8500", "lines")`: `PredictionService.Predict` (and
  `ModelService.GetModelStatus` for `status()` / `ready()`).

Both read several images in one request: `client.predict([path, png_bytes, array])` returns one
`Prediction(text, confidence)` per image; the text is the model's `text` output (line models) or
`character` output (character models). Images are checked by `serving.predictors.encode_image`
before anything is sent, so an unreadable one raises `PredictionError` naming it; a request the
server refuses (unknown model or version, unreadable image, server down) raises `ServingError`
carrying the server's status and message.

CLI:
    python -m serving.client predict line.png [more.png ...] --model lines \
        [--version V | --label L] [--rest http://127.0.0.1:8501 | --grpc 127.0.0.1:8500]
prints `<image>\t<text>\t<confidence>` per image.
"""

import argparse
import base64
import dataclasses
import sys
import threading
from collections.abc import Sequence

import grpc
import requests
import tensorflow as tf
from google.protobuf.wrappers_pb2 import Int64Value
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.predictors import ImageInput, PredictionError, encode_image
from common.signatures import IMAGE_BYTES_INPUT, SERVING_SIGNATURE

TEXT_OUTPUTS = ("text", "character")  # line models, character models
DEFAULT_TIMEOUT = 30.0
DEFAULT_REST_URL = "http://127.0.0.1:8501"
DEFAULT_GRPC_ADDRESS = "127.0.0.1:8500"

# The HTTP status a gRPC status corresponds to (as TF Serving's REST API maps them).
GRPC_TO_HTTP = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


@dataclasses.dataclass(frozen=True)
class Prediction:
    text: str
    confidence: float


class ServingError(Exception):
    """A request the server refused or could not answer.

    `status` is what the transport said: the HTTP status (int) for REST, the gRPC status code
    name (e.g. "NOT_FOUND") for gRPC; `http_status` is the HTTP equivalent in both cases;
    `message` is the server's own error message.
    """

    def __init__(self, status, message: str, http_status: int | None = None):
        self.status = status
        self.message = message
        if http_status is None:
            http_status = status if isinstance(status, int) else GRPC_TO_HTTP.get(status, 500)
        self.http_status = http_status
        super().__init__(f"{status}: {message}")


def _check_spec(model: str, version, label) -> int | None:
    if not model:
        raise ValueError("model name is required")
    if version is not None and label is not None:
        raise ValueError("give a model version or a version label, not both")
    if version is not None:
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise ValueError(f"model version must be an integer, got {version!r}") from None
    return version


def _encode_all(images: Sequence[ImageInput]) -> list:
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise PredictionError(
            f"expected a list of images, got {type(images).__name__}; wrap one image in a list"
        )
    if not images:
        raise PredictionError("no images to predict")
    return [encode_image(image) for image in images]


def _text_key(keys) -> str:
    for key in TEXT_OUTPUTS:
        if key in keys:
            return key
    raise ServingError(
        502, f"response has no {' or '.join(TEXT_OUTPUTS)} output (outputs: {sorted(keys)})"
    )


def _check_count(predictions: list, expected: int) -> list:
    if len(predictions) != expected:
        raise ServingError(502, f"sent {expected} images, got {len(predictions)} predictions")
    return predictions


class RestClient:
    """TF Serving's REST predict API; thread-safe (one HTTP session per thread)."""

    def __init__(
        self,
        base_url: str = DEFAULT_REST_URL,
        model: str = "lines",
        version: int | None = None,
        label: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.version = _check_spec(model, version, label)
        self.base_url, self.model, self.label, self.timeout = (
            base_url.rstrip("/"),
            model,
            label,
            timeout,
        )
        self._local = threading.local()

    @property
    def url(self) -> str:
        url = f"{self.base_url}/v1/models/{self.model}"
        if self.version is not None:
            url += f"/versions/{self.version}"
        elif self.label is not None:
            url += f"/labels/{self.label}"
        return url + ":predict"

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def predict(self, images: Sequence[ImageInput]) -> list:
        encoded = _encode_all(images)
        body = {
            "signature_name": SERVING_SIGNATURE,
            "instances": [
                {IMAGE_BYTES_INPUT: {"b64": base64.b64encode(data).decode("ascii")}}
                for data in encoded
            ],
        }
        try:
            response = self._session().post(self.url, json=body, timeout=self.timeout)
        except requests.Timeout as e:
            raise ServingError(
                504, f"{self.url}: no answer within {self.timeout} s ({e})"
            ) from None
        except requests.RequestException as e:
            raise ServingError(503, f"{self.url}: cannot reach the server ({e})") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise ServingError(
                response.status_code, message or response.text[:500] or response.reason
            )
        if not isinstance(payload, dict):
            raise ServingError(502, f"response is not a JSON object: {response.text[:200]!r}")
        return _check_count(self._parse(payload), len(encoded))

    @staticmethod
    def _parse(payload: dict) -> list:
        if "predictions" in payload:  # row format: one object per instance
            rows = payload["predictions"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ServingError(502, f"unexpected predictions: {str(rows)[:200]}")
        elif isinstance(payload.get("outputs"), dict):  # columnar format
            columns = payload["outputs"]
            rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        else:
            raise ServingError(502, f"response has no predictions: {str(payload)[:200]}")
        if not rows:
            return []
        key = _text_key(rows[0])
        return [Prediction(_as_text(row[key]), float(row["confidence"])) for row in rows]

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _as_text(value) -> str:
    if isinstance(value, dict) and "b64" in value:  # binary strings come base64-encoded
        return base64.b64decode(value["b64"]).decode("utf-8", errors="replace")
    return str(value)


class GrpcClient:
    """TF Serving's gRPC PredictionService (and ModelService for status); thread-safe."""

    def __init__(
        self,
        address: str = DEFAULT_GRPC_ADDRESS,
        model: str = "lines",
        version: int | None = None,
        label: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_bytes: int = 64 * 1024 * 1024,
    ):
        self.version = _check_spec(model, version, label)
        self.address, self.model, self.label, self.timeout = address, model, label, timeout
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self._channel = grpc.insecure_channel(address, options=options)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel).Predict
        self._status = model_service_pb2_grpc.ModelServiceStub(self._channel).GetModelStatus

    def _model_spec(self, spec, version: int | None = None) -> None:
        spec.name = self.model
        version = self.version if version is None else version
        if version is not None:
            spec.version.CopyFrom(Int64Value(value=version))
        elif self.label is not None:
            spec.version_label = self.label

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code() if callable(getattr(e, "code", None)) else None
            name = code.name if code is not None else "UNKNOWN"
            details = e.details() if callable(getattr(e, "details", None)) else str(e)
            if name == "UNAVAILABLE":
                details = f"{self.address}: {details}"
            raise ServingError(name, details or name) from None

    def predict(self, images: Sequence[ImageInput], version: int | None = None) -> list:
        """One Prediction per image; `version` overrides the client's version for this call."""
        encoded = _encode_all(images)
        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, version)
        request.model_spec.signature_name = SERVING_SIGNATURE
        request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(encoded, dtype=tf.string))
        response = self._call(self._predict, request)
        outputs = response.outputs
        key = _text_key(outputs.keys())
        if "confidence" not in outputs:
            raise ServingError("INTERNAL", "response has no confidence output", 502)
        texts = tf.make_ndarray(outputs[key]).reshape(-1)
        confidences = tf.make_ndarray(outputs["confidence"]).reshape(-1)
        predictions = [
            Prediction(t.decode("utf-8", errors="replace"), float(c))
            for t, c in zip(texts, confidences)
        ]
        return _check_count(predictions, len(encoded))

    def status(self) -> list:
        """[{"version": int, "state": "AVAILABLE", "error": ""}, ...] for the model's versions."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model
        if self.version is not None:  # GetModelStatus takes a version, not a label
            request.model_spec.version.CopyFrom(Int64Value(value=self.version))
        response = self._call(self._status, request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [
            {
                "version": s.version,
                "state": state_name(s.state),
                "error": s.status.error_message,
            }
            for s in response.model_version_status
        ]

    def ready(self) -> bool:
        """Whether some (or the requested) version of the model is AVAILABLE."""
        return any(s["state"] == "AVAILABLE" for s in self.status())

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m serving.client", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="read images with a served model")
    predict.add_argument("images", nargs="+", metavar="IMG", help="image files (PNG/JPEG/GIF/BMP)")
    predict.add_argument("--model", default="lines", help="model name (default: lines)")
    which = predict.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="model version (default: the server's latest)")
    which.add_argument("--label", help="model version label, e.g. stable")
    target = predict.add_mutually_exclusive_group()
    target.add_argument("--rest", metavar="URL", help=f"REST API base URL, e.g. {DEFAULT_REST_URL}")
    target.add_argument(
        "--grpc", metavar="HOST:PORT", help=f"gRPC address (default: {DEFAULT_GRPC_ADDRESS})"
    )
    predict.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    try:
        if args.rest:
            client = RestClient(args.rest, args.model, args.version, args.label, args.timeout)
        else:
            address = args.grpc or DEFAULT_GRPC_ADDRESS
            client = GrpcClient(address, args.model, args.version, args.label, args.timeout)
        with client:
            predictions = client.predict(args.images)
    except (PredictionError, ServingError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for image, prediction in zip(args.images, predictions):
        print(f"{image}\t{prediction.text}\t{prediction.confidence:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
