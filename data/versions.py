"""Dataset versions: every dataset the project prepares is a numbered span with a metadata file.

A *series* is one dataset read from one place with one set of arguments; it lives in
`<base>/<key>/` (key: a hash of that identity). Preparing it hashes every input file (sha256);
with the arguments that gives the content's fingerprint. When the fingerprint equals the newest
span's, that span is used again, so the pipeline reads the very same files and its cache holds;
otherwise the data is written as the next span, `<series>/span-<N>/{train,eval}/`, and the
next run trains on it. The pipeline's ImportExampleGen reads `span-{SPAN}/<split>/*` under the
series, pinned to the span the run prepared (`example_input`), so the run's examples artifact
carries that span and a run never picks up a span another run is writing.

Each span holds `metadata.json`, in the spirit of the FSDL labs' metadata files (where the data
came from and the sha256 of what was read): dataset, span, fingerprint, created_at, source,
args, counts per split, input_sha256 per file, plus what the converter reported. A span is
written under a temporary name and renamed once complete, so a run that dies half-way leaves
nothing that looks like a version.

Folders prepared before versions (`<base>/<key>/{train,eval}` with `_COMPLETE`) are moved into
`span-1` of their series the first time they are prepared again, without rewriting the data.

Imports nothing heavy: TensorFlow is loaded only to count the records of a written span.
"""

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from tqdm import tqdm

from data.download import file_sha256

METADATA_FILE = "metadata.json"
COMPLETE_MARKER = "_COMPLETE"  # in a finished span: the series identity, as JSON
SPAN_PREFIX = "span-"
SPAN_PATTERN = SPAN_PREFIX + "{SPAN}"  # TFX's span placeholder in ExampleGen split patterns
_SPAN_DIR = re.compile(SPAN_PREFIX + r"(\d+)")


def file_digests(path: Path) -> dict:
    """{file name: sha256} of a file, or of every file under a folder (names relative to it)."""
    path = Path(path)
    if path.is_file():
        return {path.name: file_sha256(path)}
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return {
        p.relative_to(path).as_posix(): file_sha256(p)
        for p in tqdm(files, desc=f"hashing {path.name}", unit="file", disable=None, leave=False)
    }


def text_digest(text: str) -> str:
    """The sha256 of text that is an input without being one file (e.g. a corpus read by NLTK)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def series_dir(base: Path, identity: list) -> Path:
    """The folder of a dataset's spans: `base/<first 12 hex digits of the identity's sha256>`."""
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return Path(base) / key[:12]


def spans(series: Path) -> list:
    """The complete spans of a series, oldest first."""
    if not Path(series).is_dir():
        return []
    found = (_SPAN_DIR.fullmatch(p.name) for p in Path(series).iterdir())
    return sorted(
        int(m[1]) for m in found if m and (Path(series) / m[0] / COMPLETE_MARKER).exists()
    )


def example_input(examples_dir: str) -> tuple:
    """(input base, split pattern prefix, span or None) for ImportExampleGen: a span folder is
    read through its series with TFX's {SPAN} placeholder; any other folder as it is."""
    path = examples_dir.rstrip("/")
    match = _SPAN_DIR.fullmatch(os.path.basename(path))
    if not match:
        return examples_dir, "", None
    return os.path.dirname(path), SPAN_PATTERN + "/", int(match[1])


def read_metadata(examples_dir) -> dict:
    """The metadata.json of a prepared span, or {} if it has none."""
    path = Path(examples_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


@contextlib.contextmanager
def versioned_dir(base: Path, identity: list, *, dataset: str, source: str, inputs: dict, args):
    """Yields (span dir, partial dir to fill, or None when the newest span has this content).

    `identity`: what names the series (source location, arguments); `inputs`: {name: sha256}
    of what is read (file_digests, text_digest); `args`: the arguments recorded. On a clean exit
    the partial dir gets metadata.json (merged into one the converter wrote there) and the
    completion marker, and becomes the next span."""
    series = series_dir(base, identity)
    _migrate_unversioned(series, identity, dataset, source, inputs, args)
    fingerprint = _fingerprint(dataset, identity, inputs, args)
    existing = spans(series)
    newest = series / f"{SPAN_PREFIX}{existing[-1]}" if existing else None
    if newest and read_metadata(newest).get("fingerprint") == fingerprint:
        yield newest, None
        return
    span = (existing[-1] if existing else 0) + 1
    out = series / f"{SPAN_PREFIX}{span}"
    partial = series / f"_partial-{SPAN_PREFIX}{span}-{os.getpid()}"  # not matched by {SPAN}
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield out, partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    write_metadata(
        partial,
        dataset=dataset,
        source=source,
        inputs=inputs,
        args=args,
        span=span,
        fingerprint=fingerprint,
    )
    (partial / COMPLETE_MARKER).write_text(json.dumps(identity, default=str))
    if out.exists():  # another run wrote this span meanwhile: spans are never replaced
        shutil.rmtree(partial)
    else:
        partial.rename(out)


def write_metadata(
    out: Path, *, dataset: str, source: str | Path, inputs: dict, args, **fields
) -> dict:
    """Writes out/metadata.json: the dataset's provenance and its examples per split, over any
    metadata.json already there (a converter's report); returns it."""
    out = Path(out)
    metadata = {
        **read_metadata(out),
        "dataset": dataset,
        **fields,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": str(source),
        "args": args,
        "counts": {
            split.name: _count_records(split)
            for split in sorted(out.iterdir())
            if split.is_dir() and any(split.glob("*.tfrecord.gz"))
        },
        "input_sha256": inputs,
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=1, ensure_ascii=False) + "\n")
    return metadata


def _fingerprint(dataset: str, identity, inputs: dict, args) -> str:
    return text_digest(json.dumps([dataset, identity, inputs, args], sort_keys=True, default=str))


def _count_records(split_dir: Path) -> int:
    import tensorflow as tf

    files = [str(p) for p in sorted(split_dir.glob("*.tfrecord.gz"))]
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return int(records.reduce(0, lambda count, _: count + 1))


def _migrate_unversioned(series: Path, identity, dataset, source, inputs, args) -> None:
    """Moves a folder prepared before versions into span 1 of its series (see module doc)."""
    if not (series / COMPLETE_MARKER).exists() or spans(series):
        return
    span = series / f"{SPAN_PREFIX}1"
    partial = series.with_name(series.name + ".migrating")
    series.rename(partial)
    series.mkdir()
    (partial / COMPLETE_MARKER).unlink()
    write_metadata(
        partial,
        dataset=dataset,
        source=source,
        inputs=inputs,
        args=args,
        span=1,
        fingerprint=_fingerprint(dataset, identity, inputs, args),
        migrated="prepared before dataset versions; inputs hashed when it became span 1",
    )
    (partial / COMPLETE_MARKER).write_text(json.dumps(identity, default=str))
    partial.rename(span)
