"""Checksum-verified downloads of the raw datasets described in data/metadata/*.json.

Raw archives are large (EMNIST is 562 MB) and come from servers we do not control, so a
download streams to a temporary file beside the destination and only an archive whose
sha256 matches the pinned digest is moved into place: an interrupted or tampered download
never leaves a file that later steps would trust.

A metadata file describes one archive (url, filename, sha256) or several ("files": [...]). A
dataset behind a registration (IAM) names the environment variables holding its credentials
("credentials_env": [user variable, password variable]); they are sent as HTTP basic auth and
never printed or written anywhere. A file whose sha256 is not pinned yet (null) is downloaded
unverified and its digest printed, so that it can be pinned.

    python -m data.download emnist --dest DIR
    IAM_USERNAME=... IAM_PASSWORD=... python -m data.download iam --dest DIR
"""

import argparse
import base64
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


def credentials(meta: dict) -> tuple[str, str] | None:
    """(user, password) from the environment variables the metadata names, if it names any."""
    names = meta.get("credentials_env")
    if not names:
        return None
    values = [os.environ.get(name) for name in names]
    if not values[0] or not values[1]:
        raise DatasetError(
            f"{meta['name']} needs registration ({meta.get('homepage', '')}): "
            f"set the environment variables {' and '.join(names)}"
        )
    return values[0], values[1]


def download(url: str, dest_path, sha256: str | None, progress: bool = True, auth=None) -> Path:
    """Fetch `url` (http(s):// or file://) to `dest_path` unless it is already there intact;
    `auth` (user, password) is sent as HTTP basic auth; sha256 None accepts any content."""
    dest = Path(dest_path)
    expected = sha256.lower() if sha256 else None
    if dest.is_file() and (expected is None or file_sha256(dest) == expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        actual = _stream(url, os.fdopen(fd, "wb"), dest.name, progress, auth)
        if expected is not None and actual != expected:
            raise DatasetError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}"
            )
        os.replace(tmp_name, dest)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return dest


def _stream(url: str, out, label: str, progress: bool, auth=None) -> str:
    """Copy the response body into `out` (closed afterwards), returning its sha256."""
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(url)
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            request.add_unredirected_header("Authorization", f"Basic {token}")
        with out, urllib.request.urlopen(request, timeout=60) as response:
            length = response.headers.get("Content-Length")
            with tqdm(
                total=int(length) if length else None,
                unit="B",
                unit_scale=True,
                desc=label,
                disable=not progress,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as e:  # ValueError: malformed URL
        raise DatasetError(f"could not download {url}: {e}") from e
    return digest.hexdigest()


def main(argv=None) -> int:
    names = sorted(p.stem for p in METADATA_DIR.glob("*.json"))
    parser = argparse.ArgumentParser(
        prog="python -m data.download", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("dataset", choices=names)
    parser.add_argument(
        "--dest", required=True, type=Path, help="directory to store the archive in"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    meta = load_metadata(args.dataset)
    try:
        auth = credentials(meta)
        for item in meta.get("files", [meta]):
            size = f" ({item['size_bytes'] / 1e6:.0f} MB)" if item.get("size_bytes") else ""
            print(f"{item['url']}{size} -> {args.dest / item['filename']}")
            path = download(
                item["url"],
                args.dest / item["filename"],
                item["sha256"],
                not args.no_progress,
                auth,
            )
            print(
                f"ok: {path} (sha256 verified)"
                if item["sha256"]
                else f"ok: {path}, NOT verified: no pinned sha256; its sha256 is {file_sha256(path)}"
            )
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
