"""Reader for the official EMNIST gzip IDX files.

Reads either the archive NIST publishes (`gzip.zip`, members under `gzip/`) or a directory
holding the `.gz` files and the mapping file (as in ../shared/data/emnist), so the real
download and the shared development copy go through the same, validated code path.
The IDX format is parsed with numpy directly: it is tiny, and a hand parser lets every
defect be reported as a DatasetError naming the file rather than a low-level traceback.
"""

import gzip
import math
import string
import struct
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data.errors import DatasetError

SUBSETS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
PARTS = ("train", "test")
ARCHIVE_NAME = "gzip.zip"

# ByClass label order, as in emnist-byclass-mapping.txt; the rest of the project relies on it.
BYCLASS_CHARACTERS = tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase)

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


class EmnistData(NamedTuple):
    """One part of one EMNIST subset, images upright."""

    images: np.ndarray  # uint8 [N, 28, 28], white ink on black
    labels: np.ndarray  # int64 [N], indices into `characters`
    characters: list[str]  # class index -> character, from the mapping file


def read_emnist(source, subset: str = "byclass", part: str = "train") -> EmnistData:
    """Read `subset`/`part` from `gzip.zip` or from a directory of the official files.

    A directory that holds `gzip.zip` instead of the extracted files (what
    `python -m data.download emnist --dest DIR` leaves) is read through the archive.
    """
    if subset not in SUBSETS:
        raise ValueError(f"unknown EMNIST subset {subset!r}; expected one of {SUBSETS}")
    if part not in PARTS:
        raise ValueError(f"unknown EMNIST part {part!r}; expected one of {PARTS}")
    prefix = f"emnist-{subset}-{part}"
    images_name = f"{prefix}-images-idx3-ubyte.gz"
    labels_name = f"{prefix}-labels-idx1-ubyte.gz"
    mapping_name = f"emnist-{subset}-mapping.txt"

    images = _parse_idx(_gunzip(source, images_name), _where(source, images_name), _IMAGES_MAGIC)
    labels = _parse_idx(_gunzip(source, labels_name), _where(source, labels_name), _LABELS_MAGIC)
    characters = _parse_mapping(_read(source, mapping_name), _where(source, mapping_name))
    if subset == "byclass" and tuple(characters) != BYCLASS_CHARACTERS:
        raise DatasetError(
            f"{_where(source, mapping_name)}: ByClass mapping differs from the expected 0-9A-Za-z order"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{_where(source, images_name)} has {len(images)} images but "
            f"{_where(source, labels_name)} has {len(labels)} labels"
        )
    if len(labels) and labels.max() >= len(characters):
        raise DatasetError(
            f"{_where(source, labels_name)}: label {labels.max()} has no entry in "
            f"{_where(source, mapping_name)} ({len(characters)} classes)"
        )
    # The official files store every image transposed (column-major); make them upright.
    upright = np.ascontiguousarray(images.transpose(0, 2, 1))
    return EmnistData(upright, labels.astype(np.int64), characters)


def _archive(source) -> Path | None:
    """The zip to read members from, or None when `source` is a directory of extracted files."""
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir() and (path / ARCHIVE_NAME).is_file():
        return path / ARCHIVE_NAME
    if path.is_dir():
        return None
    raise DatasetError(
        f"EMNIST source {path} does not exist (expected {ARCHIVE_NAME} or a directory)"
    )


def _where(source, name: str) -> str:
    """How to name a file in messages: a path, or archive!member."""
    archive = _archive(source)
    return f"{archive}!gzip/{name}" if archive else str(Path(source) / name)


def _read(source, name: str) -> bytes:
    """Raw bytes of one official file, from the directory or from the archive's gzip/ folder."""
    archive = _archive(source)
    try:
        if archive is None:
            return (Path(source) / name).read_bytes()
        with zipfile.ZipFile(archive) as zf:
            return zf.read(f"gzip/{name}")
    except KeyError as e:
        raise DatasetError(
            f"{archive} has no member gzip/{name}; is it the official EMNIST gzip.zip?"
        ) from e
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DatasetError(f"{archive} is not a readable zip archive: {e}") from e
    except OSError as e:
        raise DatasetError(f"cannot read EMNIST file {_where(source, name)}: {e.strerror}") from e


def _gunzip(source, name: str) -> bytes:
    try:
        return gzip.decompress(_read(source, name))
    except (gzip.BadGzipFile, zlib.error, EOFError) as e:
        raise DatasetError(
            f"{_where(source, name)} is not a valid gzip file (corrupt or truncated): {e}"
        ) from e


def _parse_idx(raw: bytes, where: str, magic: int) -> np.ndarray:
    """Array view of an IDX file of unsigned bytes; header is big-endian magic then dims."""
    ndim = magic & 0xFF
    header_size = 4 * (1 + ndim)
    if len(raw) < header_size:
        raise DatasetError(f"{where}: truncated IDX header ({len(raw)} bytes)")
    found, *dims = struct.unpack(f">{1 + ndim}I", raw[:header_size])
    if found != magic:
        raise DatasetError(f"{where}: bad IDX magic number {found}, expected {magic}")
    expected = header_size + math.prod(dims)
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "has trailing data"
        raise DatasetError(
            f"{where}: {state}: {len(raw)} bytes, header dims {dims} need {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def _parse_mapping(raw: bytes, where: str) -> list[str]:
    """Characters by class index from lines '<label> <ascii code>'; labels must be 0..K-1."""
    by_label = {}
    for number, line in enumerate(raw.decode("ascii", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            label, code = (int(field) for field in line.split())
            by_label[label] = chr(code)
        except ValueError as e:
            raise DatasetError(
                f"{where}:{number}: expected '<label> <ascii code>', got {line!r}"
            ) from e
    if not by_label or sorted(by_label) != list(range(len(by_label))):
        raise DatasetError(f"{where}: labels must be 0..K-1 without gaps, got {sorted(by_label)}")
    return [by_label[label] for label in range(len(by_label))]
