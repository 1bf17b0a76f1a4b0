"""The one exception the data package raises for bad or missing input.

Callers (CLIs, pipeline components) catch a single type and show its message, which always
names the offending file, URL or argument, instead of a numpy/zlib/struct traceback.
"""


class DatasetError(Exception):
    """A dataset file, archive or download is missing, corrupt or inconsistent."""
