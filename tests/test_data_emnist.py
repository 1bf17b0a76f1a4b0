"""The official-EMNIST reader on tiny IDX files written here, and on the real shared copy."""

import gzip
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from data.emnist import BYCLASS_CHARACTERS, read_emnist
from data.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return (
        struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    )


def write_official_files(
    directory: Path,
    images: np.ndarray,
    labels: np.ndarray,
    part: str = "train",
    subset: str = "byclass",
    characters=BYCLASS_CHARACTERS,
) -> Path:
    """Write upright `images` the way NIST does: transposed, gzip IDX, plus the mapping file."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = directory / f"emnist-{subset}-{part}"
    Path(f"{prefix}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(images.transpose(0, 2, 1), 2051))
    )
    Path(f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 2049)))
    mapping = "".join(f"{label} {ord(c)}\n" for label, c in enumerate(characters))
    (directory / f"emnist-{subset}-mapping.txt").write_text(mapping)
    return directory


def zip_official(directory: Path, archive: Path) -> Path:
    """Wrap the files like the official gzip.zip (members under gzip/)."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(directory.iterdir()):
            zf.write(path, f"gzip/{path.name}")
    return archive


def asymmetric_images(n: int) -> np.ndarray:
    """Upright images with a bar along the top row and a dot at the bottom left."""
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, :] = 255
    images[:, 27, 0] = 128
    images[:, 14, 14] = np.arange(n)  # make each image distinct
    return images


@pytest.fixture
def official_dir(tmp_path):
    return write_official_files(
        tmp_path / "emnist", asymmetric_images(5), np.array([0, 10, 36, 61, 3])
    )


def test_byclass_characters():
    assert len(BYCLASS_CHARACTERS) == 62
    assert (
        "".join(BYCLASS_CHARACTERS[:11]) + BYCLASS_CHARACTERS[36] + BYCLASS_CHARACTERS[61]
        == "0123456789Aaz"
    )


@pytest.mark.parametrize("as_zip", [False, True], ids=["directory", "gzip.zip"])
def test_reads_upright_images_labels_and_mapping(official_dir, tmp_path, as_zip):
    source = zip_official(official_dir, tmp_path / "gzip.zip") if as_zip else official_dir
    data = read_emnist(source, "byclass", "train")
    assert data.images.dtype == np.uint8 and data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.images, asymmetric_images(5))  # transposed back
    assert data.labels.tolist() == [0, 10, 36, 61, 3]
    assert data.characters == list(BYCLASS_CHARACTERS)


def test_directory_holding_the_downloaded_archive(official_dir, tmp_path):
    download_dir = tmp_path / "download"
    download_dir.mkdir()
    zip_official(official_dir, download_dir / "gzip.zip")
    assert read_emnist(download_dir).labels.tolist() == [0, 10, 36, 61, 3]


def corrupt(path: Path, transform) -> None:
    path.write_bytes(gzip.compress(transform(gzip.decompress(path.read_bytes()))))


@pytest.mark.parametrize(
    "file, transform, message",
    [
        ("images-idx3", lambda raw: struct.pack(">I", 2049) + raw[4:], "bad IDX magic number 2049"),
        ("images-idx3", lambda raw: raw[:-10], "truncated"),
        ("labels-idx1", lambda raw: raw[:3], "truncated IDX header"),
        ("labels-idx1", lambda raw: raw + b"\0", "trailing data"),
    ],
)
def test_malformed_idx_names_the_file(official_dir, file, transform, message):
    path = official_dir / f"emnist-byclass-train-{file}-ubyte.gz"
    corrupt(path, transform)
    with pytest.raises(DatasetError, match=message) as error:
        read_emnist(official_dir)
    assert str(path) in str(error.value)


def test_not_gzip(official_dir):
    (official_dir / "emnist-byclass-train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="labels-idx1-ubyte.gz is not a valid gzip file"):
        read_emnist(official_dir)


def test_count_mismatch(tmp_path):
    source = write_official_files(tmp_path, asymmetric_images(3), np.array([0, 1]))
    with pytest.raises(DatasetError, match="has 3 images but .* has 2 labels"):
        read_emnist(source)


def test_byclass_mapping_must_match(tmp_path):
    source = write_official_files(tmp_path, asymmetric_images(1), np.array([0]), characters="abc")
    with pytest.raises(DatasetError, match="ByClass mapping differs"):
        read_emnist(source)


def test_label_outside_mapping(tmp_path):
    source = write_official_files(
        tmp_path, asymmetric_images(1), np.array([5]), subset="digits", characters="01234"
    )
    with pytest.raises(DatasetError, match="label 5 has no entry in .*emnist-digits-mapping.txt"):
        read_emnist(source, subset="digits")


def test_missing_file_and_member(official_dir, tmp_path):
    with pytest.raises(DatasetError, match=r"emnist-byclass-test-images-idx3-ubyte.gz"):
        read_emnist(official_dir, part="test")
    with pytest.raises(DatasetError, match=r"has no member gzip/emnist-byclass-test-images"):
        read_emnist(zip_official(official_dir, tmp_path / "gzip.zip"), part="test")
    with pytest.raises(DatasetError, match="does not exist"):
        read_emnist(tmp_path / "nowhere")


def test_bad_mapping_line(official_dir):
    (official_dir / "emnist-byclass-mapping.txt").write_text("0 48\n1 x\n")
    with pytest.raises(DatasetError, match=r"mapping.txt:2: expected"):
        read_emnist(official_dir)


def test_bad_arguments(official_dir):
    with pytest.raises(ValueError, match="subset"):
        read_emnist(official_dir, subset="byfoo")
    with pytest.raises(ValueError, match="part"):
        read_emnist(official_dir, part="validation")


@pytest.mark.real_data
def test_real_shared_emnist_test_part():
    source = Path(os.environ.get("EMNIST_DIR", REPO.parent / "shared" / "data" / "emnist"))
    if not source.is_dir():
        pytest.skip(f"real EMNIST not found at {source} (set EMNIST_DIR to its directory)")
    data = read_emnist(source, "byclass", "test")
    assert data.images.shape == (16323, 28, 28)
    assert set(data.labels.tolist()) == set(range(62))
    # Upright, not transposed: an L has its ink at the left and bottom, a 7 at the top.
    ell = data.images[data.labels == BYCLASS_CHARACTERS.index("L")].mean(axis=0)
    seven = data.images[data.labels == BYCLASS_CHARACTERS.index("7")].mean(axis=0)
    assert ell[:, :10].sum() > ell[:, -10:].sum() and ell[-10:].sum() > ell[:10].sum()
    assert seven[:10].sum() > seven[-10:].sum() and seven[:10].sum() > seven[:, :10].sum()
