"""Prepared example directories: written once under a name derived from what they hold, so a
rerun with the same source and arguments finds them (and the pipeline's cache holds), and a run
that dies half-way leaves nothing that looks complete."""

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

COMPLETE_MARKER = "_COMPLETE"


@contextlib.contextmanager
def prepared_dir(base: Path, identity: list):
    """Yields (final dir, partial dir to fill, or None when already complete). On a clean exit the
    partial dir gets a `_COMPLETE` marker recording `identity` and becomes the final dir."""
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    out = base / key[:12]
    if (out / COMPLETE_MARKER).exists():
        yield out, None
        return
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield out, partial
    (partial / COMPLETE_MARKER).write_text(json.dumps(identity, default=str))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
