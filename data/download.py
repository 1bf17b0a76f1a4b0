"""Checksum-verified downloads of the raw datasets described in data/metadata/*.json.

Raw archives are large (EMNIST is 562 MB) and come from servers we do not control, so a
download streams to a temporary file beside the destination and only an archive whose
sha256 matches the pinned digest is moved into place: an interrupted or tampered download
never leaves a file that later steps would trust.

    python -m data.download emnist --dest DIR
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from data.errors import DatasetError

METADATA_DIR = Path(__file__).resolve().parent / "metadata"
_CHUNK = 1 << 20


def load_metadata(name: str) -> dict:
    """url, filename, sha256 and provenance of a dataset's raw archive."""
    path = METADATA_DIR / f"{name}.json"
    if not path.is_file():
        raise DatasetError(f"no metadata for dataset {name!r} ({path} does not exist)")
    return json.loads(path.read_text())


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest_path, sha256: str, progress: bool = True) -> Path:
    """Fetch `url` (http(s):// or file://) to `dest_path` unless it is already there intact."""
    dest = Path(dest_path)
    expected = sha256.lower()
    if dest.is_file() and file_sha256(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        actual = _stream(url, os.fdopen(fd, "wb"), dest.name, progress)
        if actual != expected:
            raise DatasetError(f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}")
        os.replace(tmp_name, dest)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return dest


def _stream(url: str, out, label: str, progress: bool) -> str:
    """Copy the response body into `out` (closed afterwards), returning its sha256."""
    digest = hashlib.sha256()
    try:
        with out, urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            with tqdm(total=int(length) if length else None, unit="B", unit_scale=True,
                      desc=label, disable=not progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as e:  # ValueError: malformed URL
        raise DatasetError(f"could not download {url}: {e}") from e
    return digest.hexdigest()


def main(argv=None) -> int:
    names = sorted(p.stem for p in METADATA_DIR.glob("*.json"))
    parser = argparse.ArgumentParser(prog="python -m data.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=names)
    parser.add_argument("--dest", required=True, type=Path, help="directory to store the archive in")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    meta = load_metadata(args.dataset)
    print(f"{meta['url']} ({meta['size_bytes'] / 1e6:.0f} MB) -> {args.dest / meta['filename']}")
    try:
        path = download(meta["url"], args.dest / meta["filename"], meta["sha256"], not args.no_progress)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"ok: {path} (sha256 verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
