"""Clients for a model served by TensorFlow Serving (or anything speaking its APIs).

- `RestClient("http://127.0.0.1:8501", "lines")`: `POST /v1/models/<name>[/versions/<v> |
  /labels/<l>]:predict` with `{"instances": [{"image_bytes": {"b64": ...}}, ...]}`.
- `GrpcClient("127.0.0.1:8500", "lines")`: `PredictionService.Predict` (and
  `ModelService.GetModelStatus` for `status()` / `ready()`).

Both read several images in one request: `client.predict([path, png_bytes, array])` returns one
`Prediction(text, confidence)` per image; the text is the model's `text` output (line models) or
`character` output (character models). Images are checked by `serving.images.encode_image`
before anything is sent, so an unreadable one raises `PredictionError` naming it; a request the
server refuses (unknown model or version, unreadable image, server down) raises `ServingError`
carrying the server's status and message (`serving.errors`).

`GrpcClient` lives in `serving.grpc_client` and is imported from there on first use: TF
Serving's gRPC protos import all of TensorFlow, which the REST client does not need.

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
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from serving.grpc_client import GrpcClient

from common.push_layout import LINES_MODEL
from common.signatures import (
    CHARACTER_CONFIDENCES,
    IMAGE_BYTES_INPUT,
    SERVING_SIGNATURE,
    TEXT_OUTPUTS,
)
from serving.errors import ServingError
from serving.images import ImageInput, PredictionError, encode_image

DEFAULT_TIMEOUT = 30.0
DEFAULT_REST_URL = "http://127.0.0.1:8501"
DEFAULT_GRPC_ADDRESS = "127.0.0.1:8500"


@dataclasses.dataclass(frozen=True)
class Prediction:
    text: str
    confidence: float
    # Line models: one confidence per character of `text` (empty for character models).
    character_confidences: tuple = ()


def character_confidences(text: str, values) -> tuple:
    """The first len(text) values of a `character_confidences` output row (-1 pads the rest)."""
    return tuple(float(v) for v in list(values)[: len(text)]) if values is not None else ()


def check_spec(model: str, version, label) -> int | None:
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


def encode_all(images: Sequence[ImageInput]) -> list:
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise PredictionError(
            f"expected a list of images, got {type(images).__name__}; wrap one image in a list"
        )
    if not images:
        raise PredictionError("no images to predict")
    return [encode_image(image) for image in images]


def text_key(keys) -> str:
    for key in TEXT_OUTPUTS:
        if key in keys:
            return key
    raise ServingError.from_http(
        502, f"response has no {' or '.join(TEXT_OUTPUTS)} output (outputs: {sorted(keys)})"
    )


def check_count(predictions: list, expected: int) -> list:
    if len(predictions) != expected:
        raise ServingError.from_http(
            502, f"sent {expected} images, got {len(predictions)} predictions"
        )
    return predictions


class RestClient:
    """TF Serving's REST predict API; thread-safe (one HTTP session per thread)."""

    def __init__(
        self,
        base_url: str = DEFAULT_REST_URL,
        model: str = LINES_MODEL,
        version: int | None = None,
        label: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.version = check_spec(model, version, label)
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
        encoded = encode_all(images)
        body: dict[str, Any] = {
            "signature_name": SERVING_SIGNATURE,
            "instances": [
                {IMAGE_BYTES_INPUT: {"b64": base64.b64encode(data).decode("ascii")}}
                for data in encoded
            ],
        }
        try:
            response = self._session().post(self.url, json=body, timeout=self.timeout)
        except requests.Timeout as e:
            raise ServingError.from_http(
                504, f"{self.url}: no answer within {self.timeout} s ({e})"
            ) from None
        except requests.RequestException as e:
            raise ServingError.from_http(
                503, f"{self.url}: cannot reach the server ({e})"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise ServingError.from_http(
                response.status_code, message or response.text[:500] or response.reason
            )
        if not isinstance(payload, dict):
            raise ServingError.from_http(
                502, f"response is not a JSON object: {response.text[:200]!r}"
            )
        return check_count(self._parse(payload), len(encoded))

    @staticmethod
    def _parse(payload: dict) -> list:
        if "predictions" in payload:  # row format: one object per instance
            rows = payload["predictions"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ServingError.from_http(502, f"unexpected predictions: {str(rows)[:200]}")
        elif isinstance(payload.get("outputs"), dict):  # columnar format
            columns = payload["outputs"]
            rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        else:
            raise ServingError.from_http(502, f"response has no predictions: {str(payload)[:200]}")
        if not rows:
            return []
        key = text_key(rows[0])
        predictions = []
        for row in rows:
            text = _as_text(row[key])
            chars = character_confidences(text, row.get(CHARACTER_CONFIDENCES))
            predictions.append(Prediction(text, float(row["confidence"]), chars))
        return predictions

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


def __getattr__(name: str):
    """`serving.client.GrpcClient`, imported on first use: its protos load all of TensorFlow,
    which the REST client and the app's import do not need."""
    if name == "GrpcClient":
        from serving.grpc_client import GrpcClient

        return GrpcClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m serving.client", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="read images with a served model")
    predict.add_argument("images", nargs="+", metavar="IMG", help="image files (PNG/JPEG/GIF/BMP)")
    predict.add_argument(
        "--model", default=LINES_MODEL, help=f"model name (default: {LINES_MODEL})"
    )
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
        client: RestClient | GrpcClient
        if args.rest:
            client = RestClient(args.rest, args.model, args.version, args.label, args.timeout)
        else:
            from serving import grpc_client

            address = args.grpc or DEFAULT_GRPC_ADDRESS
            client = grpc_client.GrpcClient(
                address, args.model, args.version, args.label, args.timeout
            )
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
