"""Pages to text: the line detector finds the lines, the line model reads them.

`ParagraphTextRecognizer(detector, reader).recognize(page)` sends the encoded page to the
detector (`line_detector` in the push layout: per-pixel probabilities at S x S, common.pages),
turns them into line polygons (serving.page_regions), crops each polygon from the page at its
FULL resolution (data.line_crops, as the line datasets crop PAGE-XML lines: outside the polygon
is paper) and reads the crops with the line model (`lines`), at most DEFAULT_MAX_BATCH crops per
call. The result is a `RecognizedPage`: each line's polygon, box, text and confidences, and the
page's text (lines top to bottom, joined by newlines).

Backends, all with `predict(images) -> one result per image`:
- `in_process(serving_base)`: the pushed SavedModels loaded in this process (TensorFlow);
- `over_rest(url)` / `over_grpc(address)`: TF Serving or serving.local_server.

Two served models rather than one SavedModel holding both: each is versioned, gated, pushed and
rolled back on its own (a better detector does not retrain or re-gate the reader), the reader
batches a page's crops in one call (and TF Serving's batching merges crops across pages), and
the detector's output is small enough (S x S x 3 floats) to cross the wire.

TensorFlow is loaded only by the in-process backend and the gRPC client.
"""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common import push_layout
from common.pages import LINE_PROBABILITIES
from common.signatures import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_PIXELS,
    IMAGE_BYTES_INPUT,
    SERVING_SIGNATURE,
)
from data.line_crops import crop_polygon, page_background
from data.pagexml_writer import WrittenLine
from serving.client import DEFAULT_TIMEOUT, Prediction, RestClient
from serving.errors import ServingError
from serving.images import ImageInput, PredictionError, check_header, encode_image
from serving.page_regions import LineRegion, RegionOptions, find_lines

MIN_PAGE_SIDE = 32  # pixels: anything smaller is no page of handwriting


@dataclass(frozen=True)
class RecognizedLine:
    polygon: list[tuple[int, int]]  # page pixels
    box: tuple[int, int, int, int]  # left, top, right, bottom (inclusive)
    text: str
    confidence: float  # the line model's: how likely the text is read right
    detection: float  # the detector's mean line probability over the region
    character_confidences: tuple = ()


@dataclass(frozen=True)
class RecognizedPage:
    width: int
    height: int
    lines: list[RecognizedLine]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_json(self) -> dict:
        """The app's answer: page size, text and lines (polygon, box, text, confidences)."""
        return {
            "width": self.width,
            "height": self.height,
            "text": self.text,
            "lines": [
                {
                    "polygon": [list(point) for point in line.polygon],
                    "box": list(line.box),
                    "text": line.text,
                    "conf": line.confidence,
                    "detection": round(line.detection, 4),
                    "chars": list(line.character_confidences),
                }
                for line in self.lines
            ],
        }

    def written_lines(self) -> list[WrittenLine]:
        """The lines for data.pagexml_writer.write_page."""
        return [
            WrittenLine(line.polygon, line.text, min(1.0, max(0.0, line.confidence)))
            for line in self.lines
        ]


class ParagraphTextRecognizer:
    """Reads a page: `detector.predict([page bytes])` -> [probabilities [S, S, 3]], then
    `reader.predict([crop bytes, ...])` -> [Prediction, ...]."""

    def __init__(
        self,
        detector,
        reader,
        options: RegionOptions | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.detector, self.reader = detector, reader
        self.options = options or RegionOptions()
        self.max_pixels = max_pixels

    def recognize(self, image: ImageInput, name: str = "page") -> RecognizedPage:
        """The page's lines and text; PredictionError naming `name` (or the file) for an image
        that is unreadable, too small or too large; ServingError for a model server's refusal."""
        raw = image
        if isinstance(image, (str, Path)):
            name = str(image)
            raw = Path(image).read_bytes() if Path(image).is_file() else image
        if isinstance(raw, bytes):  # the size from the header, before anything decodes it
            try:
                check_header(raw, self.max_pixels, name)
            except ServingError as e:
                raise PredictionError(e.message) from None
        data = encode_image(image)  # names a missing or unreadable file
        page = _gray(data, name)
        height, width = page.shape
        if min(height, width) < MIN_PAGE_SIDE:
            raise PredictionError(
                f"{name} is {width}x{height} pixels; a page needs at least "
                f"{MIN_PAGE_SIDE} pixels each way"
            )
        (probabilities,) = self.detector.predict([data])
        try:
            regions = find_lines(probabilities, (width, height), self.options)
        except ValueError as e:  # a detector that breaks the contract (common.pages)
            raise ServingError.from_http(502, f"the line detector's answer: {e}") from None
        background = page_background(page)
        crops = ((r, crop_polygon(page, r.polygon, background)) for r in regions)
        cropped = [(r, crop) for r, crop in crops if crop is not None]
        predictions: list = []
        for start in range(0, len(cropped), DEFAULT_MAX_BATCH):
            chunk = cropped[start : start + DEFAULT_MAX_BATCH]
            predictions += self.reader.predict([encode_image(crop) for _, crop in chunk])
        return RecognizedPage(
            width, height, [_line(r, p) for (r, _), p in zip(cropped, predictions)]
        )


def _line(region: LineRegion, prediction: Prediction) -> RecognizedLine:
    return RecognizedLine(
        region.polygon,
        region.box,
        prediction.text,
        prediction.confidence,
        region.score,
        prediction.character_confidences,
    )


def _gray(data: bytes, name: str) -> np.ndarray:
    """The page as uint8 gray, transparency composited over white as the models decode it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            rgba = image.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise PredictionError(f"{name}: not a readable image ({e})") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("L"))


class SavedModelDetector:
    """The pushed detector called in process (its newest version, or the version directory)."""

    def __init__(self, model_dir):
        import tensorflow as tf

        from serving.predictors import resolve_model_dir

        self.model_dir = resolve_model_dir(model_dir)
        self._serve = tf.saved_model.load(str(self.model_dir)).signatures[SERVING_SIGNATURE]
        self._errors = tf.errors.InvalidArgumentError
        self._constant = tf.constant

    def predict(self, images: list) -> list:
        try:
            outputs = self._serve(**{IMAGE_BYTES_INPUT: self._constant(images)})
        except self._errors as e:  # the signature's own checks (size, batch, undecodable)
            from serving.errors import public_message

            raise PredictionError(public_message(e.message)) from None
        return list(outputs[LINE_PROBABILITIES].numpy())


class SavedModelReader:
    """The pushed line model called in process, answering like the clients (Prediction)."""

    def __init__(self, model_dir):
        from serving.predictors import LinePredictor

        self._predictor = LinePredictor(model_dir)
        self.model_dir = self._predictor.model_dir

    def predict(self, images: list) -> list:
        return [Prediction(t, c) for t, c in self._predictor.predict_batch(images)]


class RestDetector(RestClient):
    """The detector over TF Serving's REST API; `predict` gives one [S, S, 3] array per image
    (rows are the output itself when the signature has one output, else objects naming it)."""

    @staticmethod
    def _parse(payload: dict) -> list:
        rows = payload.get("predictions")
        if not isinstance(rows, list):
            raise ServingError.from_http(502, f"response has no predictions: {str(payload)[:200]}")
        try:
            return [
                np.asarray(row[LINE_PROBABILITIES] if isinstance(row, dict) else row, np.float32)
                for row in rows
            ]
        except (KeyError, TypeError, ValueError) as e:
            raise ServingError.from_http(
                502, f"response has no {LINE_PROBABILITIES} array ({type(e).__name__}: {e})"
            ) from None


def _version_dir(serving_base, model: str, version: int | None):
    directory = push_layout.model_dir(serving_base, model)
    return directory if version is None else push_layout.version_dir(directory, version)


def in_process(
    serving_base, detector_version: int | None = None, lines_version: int | None = None
) -> ParagraphTextRecognizer:
    """The pushed detector and line model under `serving_base` (newest versions unless given),
    loaded in this process; PredictionError naming a missing model directory."""
    detector = SavedModelDetector(
        _version_dir(serving_base, push_layout.DETECTOR_MODEL, detector_version)
    )
    reader = SavedModelReader(_version_dir(serving_base, push_layout.LINES_MODEL, lines_version))
    return ParagraphTextRecognizer(detector, reader)


def over_rest(
    url: str,
    detector_version: int | None = None,
    lines_version: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ParagraphTextRecognizer:
    """Both models from a server's REST API at `url` (latest versions unless given)."""
    detector = RestDetector(url, push_layout.DETECTOR_MODEL, detector_version, timeout=timeout)
    reader = RestClient(url, push_layout.LINES_MODEL, lines_version, timeout=timeout)
    return ParagraphTextRecognizer(detector, reader)


def over_grpc(
    address: str,
    detector_version: int | None = None,
    lines_version: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    reader=None,
) -> ParagraphTextRecognizer:
    """Both models from a server's gRPC API at `address` (the app passes its own line-model
    client as `reader`). Loads TensorFlow, as every gRPC client does (its protos)."""
    from serving.grpc_client import GrpcClient

    detector = _grpc_detector_class()(
        address, push_layout.DETECTOR_MODEL, detector_version, timeout=timeout
    )
    if reader is None:
        reader = GrpcClient(address, push_layout.LINES_MODEL, lines_version, timeout=timeout)
    return ParagraphTextRecognizer(detector, reader)


def _grpc_detector_class():
    """GrpcClient with `predict` giving the detector's arrays: defined on first use, since the
    gRPC client's module loads TensorFlow."""
    import tensorflow as tf

    from serving.client import encode_all
    from serving.grpc_client import GrpcClient

    class GrpcDetector(GrpcClient):
        def predict(self, images, version: int | None = None) -> list:
            outputs = self.predict_outputs(encode_all(images), version, [LINE_PROBABILITIES])
            if LINE_PROBABILITIES not in outputs:
                raise ServingError.from_http(502, f"response has no {LINE_PROBABILITIES} output")
            return list(tf.make_ndarray(outputs[LINE_PROBABILITIES]).astype(np.float32))

    return GrpcDetector
