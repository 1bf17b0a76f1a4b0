"""Prepares the directory of train/eval TFRecords that ImportExampleGen ingests.

The source is either the official EMNIST files (`--data-dir`: a directory or `gzip.zip`) or, by
default, the embedded sample. `dataset_args` (subsampling, class balancing) are applied here, once,
and the result is kept under a name derived from the source and the arguments, so a rerun finds
the same files and the pipeline's cache holds.
"""

import hashlib
import json
import shutil
from pathlib import Path
from typing import Optional

from data.emnist import BYCLASS_CHARACTERS
from data.errors import DatasetError
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.tfrecords import balance_classes, convert_emnist, read_split, subsample, write_split
from training.config import DATASET_ARGS, ExperimentConfig

COMPLETE_MARKER = "_COMPLETE"


def prepare_examples(config: ExperimentConfig, data_dir: Optional[str], work_dir: str) -> Path:
    args = config.dataset_args
    if data_dir is None and args == DATASET_ARGS[config.dataset]:
        return SAMPLE_DIR
    source = Path(data_dir).resolve() if data_dir else SAMPLE_DIR
    if not source.exists():
        raise DatasetError(f"--data-dir {data_dir}: no such file or directory")
    key = hashlib.sha256(json.dumps([str(source), args], sort_keys=True).encode()).hexdigest()[:12]
    out = Path(work_dir) / "examples" / key
    if (out / COMPLETE_MARKER).exists():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fraction = args["subsample_fraction"]
    if data_dir:
        convert_emnist(source, partial, fraction if fraction < 1 else None, args["balance"])
    else:
        for split in (TRAIN_SPLIT, EVAL_SPLIT):
            images, labels, _ = read_split(SAMPLE_DIR, split)
            if args["balance"]:
                images, labels = balance_classes(images, labels)
            images, labels = subsample(images, labels, fraction)
            write_split(images, labels, BYCLASS_CHARACTERS, partial, split)
    (partial / COMPLETE_MARKER).write_text(json.dumps({"source": str(source), **args}))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out
