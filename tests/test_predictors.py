"""Predictor input handling: what encode_image accepts and rejects, and model-version lookup."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serving.predictors import PredictionError, encode_image, resolve_model_dir


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("L"))


def gradient() -> np.ndarray:
    return np.arange(28 * 20, dtype=np.uint32).reshape(28, 20).astype(np.uint8)


# --- paths and bytes -------------------------------------------------------------------------


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "no_such_letter.png"
    with pytest.raises(PredictionError, match="no_such_letter.png"):
        encode_image(missing)
    with pytest.raises(PredictionError, match="not found"):
        encode_image(str(missing))


def test_directory_is_not_an_image_file(tmp_path):
    with pytest.raises(PredictionError, match=str(tmp_path.name)):
        encode_image(tmp_path)


def test_non_image_file_names_the_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture")
    with pytest.raises(PredictionError, match=r"notes\.png: not a readable image"):
        encode_image(path)


def test_truncated_png_names_the_file(tmp_path):
    data = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PredictionError, match=r"cut\.png: not a readable image"):
        encode_image(str(path))


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(PredictionError, match=r"empty\.png"):
        encode_image(path)


@pytest.mark.parametrize(
    "data", [b"", b"definitely not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 20]
)
def test_bytes_that_are_not_an_image_are_rejected(data):
    with pytest.raises(
        PredictionError, match=f"{len(data)} bytes of image data: not a readable image"
    ):
        encode_image(data)


def test_valid_file_and_bytes_are_passed_through_unchanged(tmp_path):
    data = png_bytes(gradient())
    path = tmp_path / "a.png"
    path.write_bytes(data)
    assert encode_image(path) == data
    assert encode_image(str(path)) == data
    assert encode_image(data) == data


def test_jpeg_bytes_are_accepted():
    buffer = io.BytesIO()
    Image.fromarray(gradient(), mode="L").save(buffer, format="JPEG")
    assert encode_image(buffer.getvalue()) == buffer.getvalue()


@pytest.mark.parametrize("value", [[[0, 255], [255, 0]], 42, None, bytearray(b"abc")])
def test_wrong_input_type_is_rejected(value):
    with pytest.raises(PredictionError, match=type(value).__name__):
        encode_image(value)


# --- arrays ----------------------------------------------------------------------------------


def test_uint8_array_round_trips_to_png():
    array = gradient()
    assert np.array_equal(decoded(encode_image(array)), array)


def test_uint8_array_with_channel_axis_round_trips():
    array = gradient()
    assert np.array_equal(decoded(encode_image(array[..., None])), array)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_array_in_unit_range_round_trips(dtype):
    array = gradient()
    out = decoded(encode_image((array / 255.0).astype(dtype)))
    assert np.array_equal(out, array)


def test_float_array_extremes():
    out = decoded(encode_image(np.array([[0.0, 1.0], [0.5, 1.0]])))
    assert out.tolist() == [[0, 255], [128, 255]]


@pytest.mark.parametrize(
    "shape", [(28, 28, 3), (28, 28, 4), (784,), (0,), (0, 28), (28, 0), (2, 28, 28, 1), ()]
)
def test_array_of_wrong_shape_is_rejected(shape):
    with pytest.raises(PredictionError, match=r"2-D grayscale .*shape"):
        encode_image(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("bad", [-0.1, 1.5, 255.0])
def test_float_array_outside_unit_range_is_rejected(bad):
    array = np.zeros((28, 28), np.float32)
    array[3, 4] = bad
    with pytest.raises(PredictionError, match=r"float in \[0, 1\]"):
        encode_image(array)


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.bool_])
def test_non_uint8_integer_arrays_are_rejected(dtype):
    with pytest.raises(PredictionError, match="uint8"):
        encode_image(np.zeros((28, 28), dtype))


# --- model directories -----------------------------------------------------------------------


def fake_version(root: Path, name: str) -> Path:
    version = root / name
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    return version


def test_resolve_model_dir_picks_the_highest_integer_version(tmp_path):
    for name in ["2", "10", "9"]:
        fake_version(tmp_path, name)
    (tmp_path / "11").mkdir()  # no saved_model.pb: not a version
    fake_version(tmp_path, "latest")  # not an integer: not a version
    assert resolve_model_dir(tmp_path) == tmp_path / "10"
    assert resolve_model_dir(str(tmp_path)) == tmp_path / "10"


def test_resolve_model_dir_accepts_a_saved_model_itself(tmp_path):
    version = fake_version(tmp_path, "1700000000")
    assert resolve_model_dir(version) == version


@pytest.mark.parametrize("contents", [[], ["latest"]])
def test_resolve_model_dir_without_versions_is_an_error(tmp_path, contents):
    for name in contents:
        fake_version(tmp_path, name)
    (tmp_path / "3").mkdir()
    with pytest.raises(PredictionError, match=f"{tmp_path}: neither a SavedModel"):
        resolve_model_dir(tmp_path)


def test_resolve_model_dir_missing_directory_is_an_error(tmp_path):
    with pytest.raises(PredictionError, match="nowhere"):
        resolve_model_dir(tmp_path / "nowhere")
