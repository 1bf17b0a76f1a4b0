"""serving.paragraph and serving.recognize: pages to text, in process and over the local server.

The detector here honours the served contract (common.pages) by a fixed rule, so that where the
lines are is known: a pixel is a line pixel where there is ink within a few columns, and line
classes alternate from one run of inked rows to the next. The line model is the contract tests'
untrained one: its text is meaningless, and the tests compare it with the same model reading the
same crops.
"""

import io
import shutil
import zlib

import numpy as np
import pytest
from PIL import Image

from common import push_layout
from common.pages import BACKGROUND, LINE_PROBABILITIES, ODD_LINE
from common.signatures import DEFAULT_MAX_BATCH
from data.line_crops import crop_polygon, page_background
from data.pagexml import read_pagexml
from serving import paragraph
from serving.client import Prediction
from serving.errors import ServingError
from serving.images import PredictionError
from serving.recognize import main as recognize_main

S = 64
BARS = [(50, 80, 40, 360), (130, 160, 40, 300), (210, 240, 60, 360)]  # top, bottom, left, right


def page_png(bars=BARS, size=(400, 300), background=235) -> bytes:
    """A page of `size` (width, height) with dark bars where the lines are."""
    page = np.full(size[::-1], background, np.uint8)
    for top, bottom, left, right in bars:
        page[top:bottom, left:right] = 30
        page[top + 5 : bottom - 5 : 4, left:right] = 120  # some texture inside the line
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format="PNG")
    return buffer.getvalue()


def export_rule_detector(path) -> None:
    """A SavedModel with the detector's serving contract: image_bytes -> line_probabilities
    [N, S, S, 3], lines found by the rule in the module docstring."""
    import tensorflow as tf

    def one(encoded):
        image = tf.io.decode_image(encoded, channels=1, expand_animations=False)
        ink = 1.0 - tf.image.resize(tf.cast(image, tf.float32) / 255.0, [S, S])
        wide = tf.nn.max_pool2d(ink[None], ksize=[1, 5], strides=1, padding="SAME")[0, ..., 0]
        line = tf.cast(wide > 0.5, tf.float32)
        rows = tf.reduce_max(line, axis=1) > 0
        starts = tf.logical_and(rows, tf.logical_not(tf.concat([[False], rows[:-1]], 0)))
        odd = tf.cast(tf.math.floormod(tf.cumsum(tf.cast(starts, tf.int32)), 2), tf.float32)
        odd = odd[:, None]
        return tf.stack([1.0 - line, line * odd, line * (1.0 - odd)], -1)

    class RuleDetector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes):
            probabilities = tf.map_fn(one, image_bytes, fn_output_signature=tf.float32)
            return {LINE_PROBABILITIES: probabilities}

    module = RuleDetector()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


@pytest.fixture(scope="module")
def serving_base(tmp_path_factory):
    """<base>/line_detector/1 (the rule detector) and <base>/lines/1 (the contract line model)."""
    from serving.contract_models import template_model

    base = tmp_path_factory.mktemp("pages_serving")
    export_rule_detector(base / push_layout.DETECTOR_MODEL / "1")
    shutil.copytree(template_model(), base / push_layout.LINES_MODEL / "1")
    return base


@pytest.fixture(scope="module")
def recognizer(serving_base):
    return paragraph.in_process(serving_base)


def expected_texts(serving_base, page_bytes: bytes, polygons) -> list:
    """The line model's reading of each polygon's crop, called directly."""
    from serving.predictors import LinePredictor

    page = np.asarray(Image.open(io.BytesIO(page_bytes)).convert("L"))
    crops = [crop_polygon(page, polygon, page_background(page)) for polygon in polygons]
    predictor = LinePredictor(serving_base / push_layout.LINES_MODEL)
    return [text for text, _ in predictor.predict_batch(crops)]


def test_page_in_process_finds_the_lines_and_reads_their_crops(recognizer, serving_base):
    data = page_png()
    page = recognizer.recognize(data)
    assert (page.width, page.height) == (400, 300)
    assert len(page.lines) == 3
    for line, (top, bottom, left, right) in zip(page.lines, BARS):
        box_left, box_top, box_right, box_bottom = line.box
        cell = 2 * 300 / S  # a detector pixel (the edges' precision) and the padding
        assert abs(box_top - top) <= cell and abs(box_bottom - (bottom - 1)) <= cell
        wide = 4 * 400 / S  # the rule detector marks 2 columns beside the ink, and padding
        assert abs(box_left - left) <= wide and abs(box_right - (right - 1)) <= wide
        assert 0.0 <= line.confidence <= 1.0 and line.detection > 0.5
    texts = expected_texts(serving_base, data, [line.polygon for line in page.lines])
    assert [line.text for line in page.lines] == texts
    assert page.text == "\n".join(texts)
    answer = page.to_json()
    assert answer["text"] == page.text and len(answer["lines"]) == 3
    assert answer["lines"][0]["polygon"][0] == list(page.lines[0].polygon[0])


def test_blank_page_has_no_lines(recognizer):
    page = recognizer.recognize(page_png(bars=[]))
    assert page.lines == [] and page.text == ""


def test_same_page_over_rest_and_grpc_as_in_process(recognizer, serving_base):
    from serving.local_server import LocalModelServer, ModelManager, ModelSource

    sources = [
        ModelSource(name, serving_base / name)
        for name in (push_layout.DETECTOR_MODEL, push_layout.LINES_MODEL)
    ]
    server = LocalModelServer(ModelManager(sources, poll_seconds=0), rest_port=0, grpc_port=0)
    server.start()
    try:
        expected = recognizer.recognize(page_png()).to_json()
        over_rest = paragraph.over_rest(server.rest_url, timeout=60).recognize(page_png())
        over_grpc = paragraph.over_grpc(server.grpc_target, timeout=60).recognize(page_png())
    finally:
        server.stop()
    for result in (over_rest.to_json(), over_grpc.to_json()):
        assert [line["polygon"] for line in result["lines"]] == [
            line["polygon"] for line in expected["lines"]
        ]
        assert result["text"] == expected["text"]


class CountingReader:
    def __init__(self):
        self.calls = []

    def predict(self, images):
        self.calls.append(len(images))
        return [Prediction(f"line {i}", 0.5) for i in range(len(images))]


class StripedDetector:
    """Probabilities with `count` thin lines, alternating classes."""

    def __init__(self, count: int, size: int = 4 * (DEFAULT_MAX_BATCH + 10)):
        self.probabilities = np.zeros((size, size, 3), np.float32)
        self.probabilities[..., BACKGROUND] = 1
        for i in range(count):
            self.probabilities[4 * i : 4 * i + 2, 10:-10] = np.eye(3)[ODD_LINE + i % 2]

    def predict(self, images):
        return [self.probabilities for _ in images]


def test_crops_go_to_the_reader_in_calls_of_at_most_the_batch_limit():
    reader = CountingReader()
    count = DEFAULT_MAX_BATCH + 6
    recognizer = paragraph.ParagraphTextRecognizer(StripedDetector(count), reader)
    page = recognizer.recognize(page_png(size=(800, 1200)))
    assert reader.calls == [DEFAULT_MAX_BATCH, 6]
    assert len(page.lines) == count
    tops = [line.box[1] for line in page.lines]
    assert tops == sorted(tops)


def test_a_detector_breaking_the_contract_is_a_502():
    detector = StripedDetector(3)
    detector.probabilities = detector.probabilities[..., :2]  # two classes instead of three
    recognizer = paragraph.ParagraphTextRecognizer(detector, CountingReader())
    with pytest.raises(ServingError, match="line detector's answer: line probabilities must be"):
        recognizer.recognize(page_png())


def test_bad_pages_are_refused_naming_them(recognizer, tmp_path):
    with pytest.raises(PredictionError, match="image file not found: .*missing.png"):
        recognizer.recognize(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    with pytest.raises(PredictionError, match="notes.png: not a readable image"):
        recognizer.recognize(str(tmp_path / "notes.png"))
    with pytest.raises(PredictionError, match="10x300 pixels; a page needs at least 32"):
        recognizer.recognize(page_png(bars=[], size=(10, 300)))
    header = bytearray(page_png(bars=[]))
    header[16:24] = (20000).to_bytes(4, "big") * 2  # declares 20000 x 20000 pixels
    header[29:33] = zlib.crc32(bytes(header[12:29])).to_bytes(4, "big")
    with pytest.raises(PredictionError, match="20000x20000 pixels, more than the limit"):
        recognizer.recognize(bytes(header))


def test_missing_models_are_named():
    with pytest.raises(PredictionError, match="nowhere/line_detector: neither a SavedModel"):
        paragraph.in_process("/nowhere")


def test_cli_writes_drawing_and_pagexml_and_reports_bad_pages(
    recognizer, serving_base, tmp_path, capsys
):
    good = tmp_path / "letter (1).png"
    good.write_bytes(page_png())
    (tmp_path / "broken.png").write_bytes(page_png()[:100])
    out = tmp_path / "out"
    status = recognize_main(
        [str(good), str(tmp_path / "broken.png"), str(tmp_path / "gone.png")]
        + ["--out", str(out), "--models", str(serving_base)]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert "broken.png: not a readable image" in captured.err
    assert "gone.png" in captured.err and "2 of 3 pages could not be read" in captured.err
    assert "== " + str(good) + " (3 lines) ==" in captured.out
    drawing = Image.open(out / "letter (1).png")
    assert drawing.size == (400, 300) and drawing.mode == "RGB"
    pixels = np.asarray(drawing)
    assert (pixels[..., 0] > 150).sum() > 100 and (pixels[..., 2] > 150).sum() > 100  # red, blue
    shutil.copy(good, out / good.name)  # the XML names the image, to be found beside it
    records = list(read_pagexml(out))
    assert len(records) == 3
    texts = [line.text for line in recognizer.recognize(good).lines]
    assert [record.text for record in records] == texts
    assert captured.out.endswith("==\n" + "\n".join(texts) + "\n")


def test_cli_without_models_is_one_error_line(tmp_path, capsys):
    assert recognize_main(["page.png", "--out", str(tmp_path), "--models", "/nowhere"]) == 2
    assert capsys.readouterr().err.startswith("error: /nowhere/line_detector")


def test_page_with_the_exported_fcn_detector(serving_base, tmp_path):
    """The line detector's own export (an untrained tiny FCN: where it finds lines is arbitrary)
    answers the contract the recognizer reads, end to end."""
    import keras
    import tensorflow as tf

    from trainer.models.line_detector import LineDetectorModel
    from trainer.networks.line_detector_fcn import line_detector_fcn

    keras.utils.set_random_seed(0)
    size = 32
    model = line_detector_fcn((size, size, 1), 3, filters=4, blocks=1)
    detector_dir = tmp_path / push_layout.DETECTOR_MODEL / "1"
    spec = tf.io.FixedLenFeature([size, size, 1], tf.float32)
    LineDetectorModel().export_for_images(model, {}, spec, str(detector_dir))
    (tmp_path / push_layout.LINES_MODEL).symlink_to(serving_base / push_layout.LINES_MODEL)

    (probabilities,) = paragraph.SavedModelDetector(detector_dir).predict([page_png()])
    assert probabilities.shape == (size, size, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-4)
    page = paragraph.in_process(tmp_path).recognize(page_png())
    assert page.text == "\n".join(line.text for line in page.lines)
    for line in page.lines:
        assert all(0 <= x < 400 and 0 <= y < 300 for x, y in line.polygon)
