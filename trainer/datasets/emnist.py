"""EmnistDataset: EMNIST ByClass characters, from the official files or the embedded sample.

`dataset_args` (subsampling, class balancing) are applied once when the examples are prepared,
as a version of the source and the arguments (data.versions), so a rerun on the same files finds
the same span and the pipeline's cache holds.
"""

import shutil
from pathlib import Path

from data.emnist import BYCLASS_CHARACTERS
from data.features import EVAL_SPLIT, IMAGE_SIZE, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.versions import file_digests, versioned_dir
from trainer.datasets.base import CharacterDataset


class EmnistDataset(CharacterDataset):
    name = "EmnistDataset"
    args = {"subsample_fraction": 1.0, "balance": False}
    schema = "emnist"
    preprocessing_fn = "transform.preprocessing.preprocessing_fn"
    characters = BYCLASS_CHARACTERS

    def validate(self, args: dict) -> None:
        if args["subsample_fraction"] > 1:
            raise ValueError("dataset_args.subsample_fraction must be in (0, 1]")

    def image_shape(self, args: dict) -> tuple:
        return (IMAGE_SIZE, IMAGE_SIZE, 1)

    def prepare(self, config, source: str | None, work_dir: str) -> tuple:
        args = config.dataset_args
        origin = locate_emnist(source, self.name)
        with versioned_dir(
            Path(work_dir) / "examples",
            [str(origin), args],
            dataset=self.name,
            source=str(origin),
            inputs=file_digests(origin),
            args=args,
        ) as (out, partial):
            if partial:
                _write_examples(None if origin == SAMPLE_DIR else origin, partial, args)
        return out, {}

    def eval_example(self, config, examples_dir, resources: dict) -> tuple:
        from data.tfrecords import read_split

        images, _, characters = read_split(examples_dir, EVAL_SPLIT)
        return images[0], characters[0]


def locate_emnist(source: str | None, dataset_name: str) -> Path:
    """The EMNIST files by the data location rule (--data-dir, $EMNIST_DIR, ../shared/data/emnist,
    the embedded sample), said on the terminal: a synthetic sample must not pass for EMNIST."""
    from data.locations import locate

    origin, how = locate(source, "EMNIST_DIR", "emnist", SAMPLE_DIR, what="EMNIST folder")
    note = (
        " (synthetic glyphs: accuracy on them says nothing about handwriting)"
        if origin == SAMPLE_DIR
        else ""
    )
    print(f"{dataset_name}: EMNIST from {origin} ({how}){note}", flush=True)
    return origin


def _write_examples(source: Path | None, out: Path, args: dict) -> None:
    from data.tfrecords import balance_classes, convert_emnist, read_split, subsample, write_split

    fraction = args["subsample_fraction"]
    if source:
        convert_emnist(source, out, fraction if fraction < 1 else None, args["balance"])
        return
    if fraction == 1 and not args["balance"]:  # the sample as shipped: its shards, copied
        for split in (TRAIN_SPLIT, EVAL_SPLIT):
            shutil.copytree(SAMPLE_DIR / split, out / split)
        return
    for split in (TRAIN_SPLIT, EVAL_SPLIT):
        images, labels, _ = read_split(SAMPLE_DIR, split)
        if args["balance"]:
            images, labels = balance_classes(images, labels)
        images, labels = subsample(images, labels, fraction)
        write_split(images, labels, BYCLASS_CHARACTERS, out, split)
