"""EMNIST arrays <-> sharded, GZIP-compressed TFRecords of tf.Example, the pipeline's input.

ExampleGen ingests `<out_dir>/<split>/data-*-of-*.tfrecord.gz`; each example holds the
upright 28x28 image as PNG (IMAGE_KEY), its class index (LABEL_KEY) and the class as text
(CHARACTER_KEY) so that evaluation slices and humans never need the mapping file.

    python -m data.tfrecords --source DIR_OR_ZIP --out DIR [--subsample-fraction F] [--balance]
"""

import argparse
import io
import re
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from data.emnist import read_emnist
from data.errors import DatasetError
from data.features import (
    CHARACTER_KEY,
    DEFAULT_NUM_SHARDS,
    EVAL_SPLIT,
    IMAGE_KEY,
    LABEL_KEY,
    TRAIN_SPLIT,
)

_SHARD_GLOB = "data-*-of-*.tfrecord.gz"


def subsample(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int = 0):
    """Keep a random `fraction` of the examples (original order), for quick experiments."""
    if not 0 < fraction <= 1:
        raise ValueError(f"subsample fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(labels), size=round(len(labels) * fraction), replace=False))
    return images[keep], labels[keep]


def balance_classes(images: np.ndarray, labels: np.ndarray, seed: int = 0):
    """Cap every class at the mean per-class count, sampling without replacement.

    EMNIST ByClass is dominated by digits and a few letters; capping keeps frequent classes
    from swamping the rare ones. Classes below the mean are kept whole; order is preserved.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    cap = int(counts.mean()) if len(counts) else 0
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=min(n, cap), replace=False)
        for c, n in zip(classes, counts)
    ]
    keep = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return images[keep], labels[keep]


def write_shards(
    records: list, out_dir, split: str, num_shards: int = DEFAULT_NUM_SHARDS
) -> list[Path]:
    """Write serialized records of one split as `num_shards` contiguous GZIP TFRecord shards,
    replacing any earlier shards, with a progress bar."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    split_dir = Path(out_dir) / split
    split_dir.mkdir(parents=True, exist_ok=True)
    for stale in split_dir.glob(_SHARD_GLOB):
        stale.unlink()  # a previous run with another shard count would otherwise be read too
    paths = _shard_paths(split_dir, num_shards)
    with tqdm(total=len(records), desc=f"writing {split}", unit="ex") as bar:
        for path, shard in zip(paths, np.array_split(np.arange(len(records)), num_shards)):
            with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
                for i in shard:
                    writer.write(records[i])
                    bar.update()
    return paths


def read_examples(out_dir, split: str, what: str):
    """The tf.Example features of every record of a split, in order; `what` names the content
    in the error raised for an unreadable shard."""
    for path in _shards(Path(out_dir) / split):
        try:
            for record in _records(path):
                yield tf.train.Example.FromString(record).features.feature
        except (tf.errors.OpError, IndexError, ValueError) as e:
            raise DatasetError(f"{path}: not a readable GZIP TFRecord of {what}: {e}") from e


def write_split(
    images: np.ndarray,
    labels: np.ndarray,
    characters,
    out_dir,
    split: str,
    num_shards: int = DEFAULT_NUM_SHARDS,
) -> list[Path]:
    """Write one split of character images as `num_shards` shards, replacing earlier shards."""
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(labels):
        raise ValueError(
            f"need uint8 images [N,H,W] and N labels, got {images.dtype} "
            f"{images.shape} and {len(labels)} labels"
        )
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(characters):
        raise ValueError(
            f"labels must index the {len(characters)} characters, "
            f"got range {labels.min()}..{labels.max()}"
        )
    records = [
        _example(images[i], int(labels[i]), characters[labels[i]]) for i in range(len(labels))
    ]
    return write_shards(records, out_dir, split, num_shards)


def read_split(out_dir, split: str):
    """Decode a split written by write_split: (uint8 images, int64 labels, characters)."""
    images, labels, characters = [], [], []
    for features in read_examples(out_dir, split, "EMNIST examples"):
        try:
            images.append(
                np.asarray(Image.open(io.BytesIO(features[IMAGE_KEY].bytes_list.value[0])))
            )
        except OSError as e:
            raise DatasetError(
                f"{out_dir}/{split}: an example's image is not a readable PNG: {e}"
            ) from e
        labels.append(features[LABEL_KEY].int64_list.value[0])
        characters.append(features[CHARACTER_KEY].bytes_list.value[0].decode("utf-8"))
    return np.array(images, dtype=np.uint8), np.array(labels, dtype=np.int64), characters


def convert_emnist(
    source,
    out_dir,
    subsample_fraction: float | None = None,
    balance: bool = False,
    seed: int = 0,
    num_shards: int = DEFAULT_NUM_SHARDS,
) -> dict[str, int]:
    """Official ByClass train part -> TRAIN_SPLIT, test part -> EVAL_SPLIT; returns counts.

    Balancing and subsampling apply to both splits so evaluation matches the training mix.
    """
    counts = {}
    for split, part in ((TRAIN_SPLIT, "train"), (EVAL_SPLIT, "test")):
        images, labels, characters = read_emnist(source, "byclass", part)
        if balance:
            images, labels = balance_classes(images, labels, seed)
        if subsample_fraction is not None:
            images, labels = subsample(images, labels, subsample_fraction, seed)
        write_split(images, labels, characters, out_dir, split, num_shards)
        counts[split] = len(labels)
    return counts


def _example(image: np.ndarray, label: int, character: str) -> bytes:
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")  # uint8 [H,W] -> 8-bit grayscale PNG
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[png.getvalue()])),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                CHARACTER_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[character.encode("utf-8")])
                ),
            }
        )
    ).SerializeToString(deterministic=True)  # stable bytes: reruns leave git clean


def _records(path: Path):
    """Serialized records of one shard; batched because per-record eager iteration is slow."""
    batches = tf.data.TFRecordDataset(str(path), compression_type="GZIP").batch(4096)
    for batch in batches.as_numpy_iterator():
        yield from batch


def _shards(split_dir: Path) -> list[Path]:
    """All shards of a split, in order; a missing shard is an error, not silently less data."""
    paths = sorted(split_dir.glob(_SHARD_GLOB))
    if not paths:
        raise DatasetError(f"no TFRecord shards ({_SHARD_GLOB}) in {split_dir}")
    total = re.search(r"-of-(\d+)\.", paths[0].name)
    if paths != _shard_paths(split_dir, int(total[1]) if total else 0):
        raise DatasetError(f"{split_dir}: incomplete or mixed shard set: {[p.name for p in paths]}")
    return paths


def _shard_paths(split_dir: Path, num_shards: int) -> list[Path]:
    return [split_dir / f"data-{i:05d}-of-{num_shards:05d}.tfrecord.gz" for i in range(num_shards)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data.tfrecords", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--source", required=True, type=Path, help="EMNIST gzip.zip or directory of its files"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output directory (gets train/ and eval/)"
    )
    parser.add_argument("--subsample-fraction", type=float)
    parser.add_argument(
        "--balance", action="store_true", help="cap classes at the mean class count"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=DEFAULT_NUM_SHARDS)
    args = parser.parse_args(argv)
    try:
        counts = convert_emnist(
            args.source, args.out, args.subsample_fraction, args.balance, args.seed, args.num_shards
        )
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(", ".join(f"{split}: {n} examples" for split, n in counts.items()), f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
