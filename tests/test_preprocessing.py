"""Transform's preprocessing_fn, through tf.Transform's Beam implementation and directly."""

import io
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import text_format
from PIL import Image
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata

from transform.preprocessing import IMAGE_SIZE, decode_images, preprocessing_fn

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "emnist" / "schema.pbtxt"


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format=fmt)
    return buffer.getvalue()


def white_on_black(seed: int) -> np.ndarray:
    """A 28x28 EMNIST-like image: mostly dark, with a bright stroke and random dim noise."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    image[4:24, 10 + seed : 13 + seed] = 255
    return image


def framed_dark_on_white(height: int, width: int) -> np.ndarray:
    """Dark ink on white paper: a 2-pixel black frame along the image border."""
    image = np.full((height, width), 255, np.uint8)
    image[:2], image[-2:], image[:, :2], image[:, -2:] = 0, 0, 0, 0
    return image


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Runs preprocessing_fn over a few raw instances with the curated schema; returns
    (raw images, transformed examples as dicts of numpy arrays, TFTransformOutput)."""
    tmp = tmp_path_factory.mktemp("tft")
    schema = text_format.Parse(SCHEMA_FILE.read_text(), schema_pb2.Schema())
    raw_metadata = dataset_metadata.DatasetMetadata(schema)
    images = [white_on_black(seed) for seed in range(3)]
    raw = [
        {"image": [encode(image)], "label": [label], "character": [str(label).encode()]}
        for label, image in zip([7, 0, 61], images)
    ]
    options = PipelineOptions(["--runner=FnApiRunner"])
    with beam.Pipeline(options=options) as pipeline, tft_beam.Context(temp_dir=str(tmp / "tmp")):
        (data, metadata), transform_fn = (
            pipeline | beam.Create(raw),
            raw_metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = (
            data
            | beam.Map(tft.coders.ExampleProtoCoder(metadata.schema).encode)
            | beam.io.WriteToTFRecord(str(tmp / "transformed"), shard_name_template="")
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp / "transform_fn"))
    output = tft.TFTransformOutput(str(tmp / "transform_fn"))
    spec = output.transformed_feature_spec()
    examples = [
        {k: v.numpy() for k, v in tf.io.parse_single_example(record, spec).items()}
        for record in tf.data.TFRecordDataset(str(tmp / "transformed"))
    ]
    return images, examples, output


def test_transformed_feature_spec(transformed):
    _, _, output = transformed
    spec = output.transformed_feature_spec()
    assert set(spec) == {"image", "label"}  # 'character' is not a model input
    assert spec["image"] == tf.io.FixedLenFeature([IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)
    assert spec["label"] == tf.io.FixedLenFeature([], tf.int64)


def test_beam_transform_normalizes_images_and_passes_labels(transformed):
    images, examples, _ = transformed
    assert len(examples) == 3
    by_label = {int(example["label"]): example["image"] for example in examples}
    assert set(by_label) == {7, 0, 61}
    for label, image in zip([7, 0, 61], images):
        out = by_label[label]
        assert out.shape == (IMAGE_SIZE, IMAGE_SIZE, 1)
        assert out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        np.testing.assert_allclose(out[..., 0], image / 255.0, atol=1e-6)


def test_transform_graph_handles_a_raw_serving_image(transformed):
    """The exported transform graph (what serving runs) treats an odd-sized photo of dark ink
    like a training image."""
    _, _, output = transformed
    image_bytes = encode(framed_dark_on_white(20, 40), "JPEG")
    features = output.transform_raw_features(
        {"image": tf.constant([[image_bytes]])}, drop_unused_features=True
    )
    out = features["image"].numpy()
    assert out.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 1)
    assert out.mean() < 0.5 and out.max() > 0.5


def test_28x28_white_on_black_png_is_only_rescaled():
    image = white_on_black(5)
    out = decode_images(tf.constant([encode(image)])).numpy()
    assert out.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 1)
    np.testing.assert_allclose(out[0, ..., 0], image / 255.0, atol=1e-6)


def test_wide_dark_on_white_jpeg_is_inverted_and_letterboxed():
    paper = framed_dark_on_white(20, 40)
    assert paper.mean() / 255 > 0.5
    out = decode_images(tf.constant([encode(paper, "JPEG")])).numpy()[0, ..., 0]
    assert out.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert out.mean() < 0.5
    assert out.min() >= 0.0 and out.max() <= 1.0
    # 40 wide -> 28 wide, so 20 tall -> 14 tall: 7 black padding rows above and below.
    assert (out[:7] == 0).all() and (out[21:] == 0).all()
    assert out[7].mean() > 0.5 and out[20].mean() > 0.5  # the frame's top and bottom edges
    assert out[7:21, 0].mean() > 0.5 and out[7:21, 27].mean() > 0.5  # and its sides
    assert out[10:18, 5:23].max() < 0.1  # the inverted paper is dark


def test_tall_dark_on_white_png_is_inverted_and_pillarboxed():
    out = decode_images(tf.constant([encode(framed_dark_on_white(56, 28))])).numpy()[0, ..., 0]
    assert out.mean() < 0.5
    # 56 tall -> 28 tall, so 28 wide -> 14 wide: 7 black padding columns left and right.
    assert (out[:, :7] == 0).all() and (out[:, 21:] == 0).all()
    assert out[:, 7].mean() > 0.5 and out[:, 20].mean() > 0.5
    assert out[0, 7:21].mean() > 0.5 and out[27, 7:21].mean() > 0.5


def test_decode_images_accepts_a_batch_of_mixed_sizes_and_formats():
    batch = tf.constant(
        [
            [encode(white_on_black(0))],
            [encode(framed_dark_on_white(20, 40), "JPEG")],
            [encode(framed_dark_on_white(100, 60))],
        ]
    )
    out = decode_images(batch).numpy()
    assert out.shape == (3, IMAGE_SIZE, IMAGE_SIZE, 1)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert (out.reshape(3, -1).mean(axis=1) < 0.5).all()


def test_rgb_image_is_converted_to_one_channel():
    rgb = np.stack([white_on_black(1)] * 3, axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    out = decode_images(tf.constant([buffer.getvalue()])).numpy()
    assert out.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 1)
    np.testing.assert_allclose(out[0, ..., 0], white_on_black(1) / 255.0, atol=1 / 255)
