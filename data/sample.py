"""Where the synthetic EMNIST-like sample shipped in the repository lives.

It lets a fresh clone run the pipeline and tests offline, without ../shared/data; it is
produced by `python -m data.make_sample` and read with `data.tfrecords.read_split`.
"""

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent / "sample" / "emnist"
