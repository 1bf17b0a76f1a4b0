"""The push layout, `<base>/<model name>/<integer version>/`, that the Pusher writes and TF
Serving reads: the one place that names the models and finds their versions.

Paths go through `tf.io.gfile`, so `gs://` (and any file system TensorFlow knows) works as well
as a local folder; TensorFlow is imported on first use, not when this module is imported.
"""

import os

CHARACTERS_MODEL = "characters"
LINES_MODEL = "lines"
DETECTOR_MODEL = "line_detector"  # pages: per-pixel background / odd line / even line


def model_dir(base: str, model_name: str) -> str:
    """Where the versions of `model_name` live under the serving base directory."""
    return os.path.join(str(base), model_name)


def list_versions(model_directory: str | os.PathLike) -> list[int]:
    """The integer versions under `model_directory`, oldest first (empty if it does not exist).

    Other entries (temporary directories, files) are ignored, as TF Serving ignores them.
    """
    import tensorflow as tf  # deferred: callers that never list versions stay light

    model_directory = str(model_directory)
    if not tf.io.gfile.isdir(model_directory):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(model_directory))
    return sorted(int(name) for name in names if name.isdigit())


def newest_version(model_directory: str | os.PathLike) -> int | None:
    """The newest version under `model_directory`, or None when it holds none."""
    versions = list_versions(model_directory)
    return versions[-1] if versions else None


def version_dir(model_directory: str | os.PathLike, version: int) -> str:
    return os.path.join(str(model_directory), str(version))


def newest_version_dir(model_directory: str) -> str | None:
    """The directory of the newest version, or None."""
    version = newest_version(model_directory)
    return None if version is None else version_dir(model_directory, version)
