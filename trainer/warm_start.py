"""Warm start: a new run starts from the weights of a model trained before (for example a line
model trained on synthetic EMNIST lines, to start a model of real handwriting).

Every exported model carries its weights, in order, with the charset and the network it was
trained with (`assets.extra/warm_start.npz`; TF Serving ignores it, the Pusher copies it). The
run's `train_args.warm_start` names such a model: a version directory, a pushed model's
directory (its newest version), or a Trainer's model directory. Weights are matched in order;
the charsets and the network must agree, and weights whose shapes differ (a network built for
another image height) keep their fresh values, as the printed summary says.
"""

import io
import json
import os

import numpy as np
import tensorflow as tf

from common.push_layout import newest_version_dir
from data.errors import DatasetError
from trainer.datasets import DATASETS

WARM_START_FILE = os.path.join("assets.extra", "warm_start.npz")
_INFO = "__info__"
INPUT_SHAPE = "input_shape"


def stored_info(model_dir: str) -> dict:
    """What a model directory's warm-start file records (charset, network, input shape), or {}
    when it has none (models exported before it existed)."""
    path = os.path.join(model_dir, WARM_START_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path, "rb") as f:
        return json.loads(str(np.load(io.BytesIO(f.read()), allow_pickle=False)[_INFO]))


def save_weights(model, config, export_dir: str) -> None:
    """Writes the model's weights, charset and network beside its SavedModel."""
    dataset = DATASETS[config.dataset]
    info = {
        "charset": "".join(dataset.charset),
        # the transformed image it reads: a baseline of another geometry cannot be compared
        INPUT_SHAPE: list(dataset.image_shape(config.dataset_args)),
        "network": config.network,
        "network_args": config.network_args,
    }
    arrays = {f"w{i:04d}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_INFO: np.array(json.dumps(info))})
    path = os.path.join(export_dir, WARM_START_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def warm_start(model, config, source: str) -> str:
    """Loads the weights of the model at `source` into `model`; returns a one-line summary.
    Raises DatasetError naming both charsets (or networks) when they disagree."""
    path = _weights_file(source)
    with tf.io.gfile.GFile(path, "rb") as f:
        stored = np.load(io.BytesIO(f.read()), allow_pickle=False)
        info = json.loads(str(stored[_INFO]))
        weights = [stored[f"w{i:04d}"] for i in range(len(stored.files) - 1)]
    charset = "".join(DATASETS[config.dataset].charset)
    if info["charset"] != charset:
        raise DatasetError(
            f"train_args.warm_start: {source} reads the charset {info['charset']!r} "
            f"({len(info['charset'])} characters), this run reads {charset!r} ({len(charset)})"
        )
    if info["network"] != config.network:
        raise DatasetError(
            f"train_args.warm_start: {source} is a {info['network']} network, "
            f"this run trains {config.network}"
        )
    current = model.get_weights()
    if len(weights) != len(current):
        raise DatasetError(
            f"train_args.warm_start: {source} has {len(weights)} weight arrays, this "
            f"network {len(current)} (network_args {info['network_args']} vs "
            f"{config.network_args})"
        )
    loaded = [w if w.shape == c.shape else c for w, c in zip(weights, current)]
    model.set_weights(loaded)
    kept = sum(w.shape == c.shape for w, c in zip(weights, current))
    return f"warm start from {path}: {kept} of {len(current)} weight arrays loaded" + (
        "" if kept == len(current) else " (the others differ in shape and start fresh)"
    )


def _weights_file(source: str) -> str:
    for directory in (source, newest_version_dir(source) or source):
        path = os.path.join(directory, WARM_START_FILE)
        if tf.io.gfile.exists(path):
            return path
    raise DatasetError(
        f"train_args.warm_start: no {WARM_START_FILE} in {source} or its newest "
        "version (export a model with this version of the project first)"
    )
