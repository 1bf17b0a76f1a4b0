"""TFRecord conversion: sampling semantics, round trip, EMNIST conversion and the shipped sample."""

import gzip

import numpy as np
import pytest
from test_data_emnist import write_official_files

from data import tfrecords
from data.emnist import BYCLASS_CHARACTERS
from data.errors import DatasetError
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.tfrecords import balance_classes, convert_emnist, read_split, subsample, write_split


def numbered(labels):
    """Images whose pixel [0, 0] is the example's index, to check images stay with labels."""
    labels = np.asarray(labels, dtype=np.int64)
    images = np.zeros((len(labels), 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(len(labels))
    return images, labels


@pytest.mark.parametrize("fraction", [0, -0.5, 1.01])
def test_subsample_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        subsample(*numbered(range(10)), fraction, seed=0)


def test_subsample_keeps_random_fraction_in_order():
    images, labels = numbered(np.arange(100) % 7)
    kept_images, kept_labels = subsample(images, labels, 0.25, seed=1)
    index = kept_images[:, 0, 0].astype(int)
    assert len(index) == 25 and np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(kept_labels, labels[index])
    assert index.tolist() != list(range(25))  # random, not a prefix
    np.testing.assert_array_equal(subsample(images, labels, 0.25, seed=1)[0], kept_images)
    assert len(subsample(images, labels, 1.0, seed=1)[1]) == 100


def test_balance_caps_classes_at_mean_count():
    images, labels = numbered([0] * 50 + [1] * 20 + [2] * 5 + [3] * 5)  # mean 20
    kept_images, kept_labels = balance_classes(images, labels, seed=0)
    assert np.bincount(kept_labels).tolist() == [20, 20, 5, 5]
    index = kept_images[:, 0, 0].astype(int)
    assert len(set(index)) == len(index) and np.all(np.diff(index) > 0)  # no duplicates, order kept
    np.testing.assert_array_equal(kept_labels, labels[index])


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 62, size=10)
    paths = write_split(images, labels, BYCLASS_CHARACTERS, tmp_path, TRAIN_SPLIT, num_shards=4)
    assert [p.name for p in paths] == [f"data-0000{i}-of-00004.tfrecord.gz" for i in range(4)]
    assert all(
        p.parent == tmp_path / TRAIN_SPLIT and p.read_bytes()[:2] == b"\x1f\x8b" for p in paths
    )
    read_images, read_labels, characters = read_split(tmp_path, TRAIN_SPLIT)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    assert characters == [BYCLASS_CHARACTERS[label] for label in labels]
    # Rewriting with fewer shards replaces the old set instead of mixing with it.
    write_split(images[:3], labels[:3], BYCLASS_CHARACTERS, tmp_path, TRAIN_SPLIT, num_shards=2)
    assert len(read_split(tmp_path, TRAIN_SPLIT)[1]) == 3


def test_write_rejects_inconsistent_input(tmp_path):
    images, labels = numbered([0, 1, 2])
    with pytest.raises(ValueError, match="labels must index"):
        write_split(images, labels, ["a", "b"], tmp_path, TRAIN_SPLIT)
    with pytest.raises(ValueError, match="need uint8 images"):
        write_split(images, labels[:2], BYCLASS_CHARACTERS, tmp_path, TRAIN_SPLIT)


def test_read_errors_name_the_location(tmp_path):
    with pytest.raises(DatasetError, match=f"no TFRecord shards .* in {tmp_path / EVAL_SPLIT}"):
        read_split(tmp_path, EVAL_SPLIT)
    paths = write_split(
        *numbered([0, 1, 2, 3]), BYCLASS_CHARACTERS, tmp_path, EVAL_SPLIT, num_shards=2
    )
    paths[1].unlink()
    with pytest.raises(DatasetError, match="incomplete or mixed shard set"):
        read_split(tmp_path, EVAL_SPLIT)
    paths[1].write_bytes(gzip.compress(b"not a tfrecord file" * 4))
    with pytest.raises(DatasetError, match="data-00001-of-00002.tfrecord.gz: not a readable"):
        read_split(tmp_path, EVAL_SPLIT)


def test_convert_emnist_and_cli(tmp_path):
    source = tmp_path / "emnist"
    write_official_files(source, *numbered(np.arange(40) % 4), part="train")
    write_official_files(source, *numbered(np.arange(8) % 2), part="test")
    counts = convert_emnist(source, tmp_path / "out", num_shards=2)
    assert counts == {TRAIN_SPLIT: 40, EVAL_SPLIT: 8}
    images, labels, characters = read_split(tmp_path / "out", TRAIN_SPLIT)
    assert labels.tolist() == (np.arange(40) % 4).tolist() and characters[:4] == [
        "0",
        "1",
        "2",
        "3",
    ]
    np.testing.assert_array_equal(images, numbered(np.arange(40) % 4)[0])  # upright again

    assert (
        tfrecords.main(
            [
                "--source",
                str(source),
                "--out",
                str(tmp_path / "cli"),
                "--subsample-fraction",
                "0.5",
                "--balance",
            ]
        )
        == 0
    )
    assert len(read_split(tmp_path / "cli", TRAIN_SPLIT)[1]) == 20
    assert len(read_split(tmp_path / "cli", EVAL_SPLIT)[1]) == 4
    assert (
        tfrecords.main(["--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    )


@pytest.mark.parametrize("split, per_class", [(TRAIN_SPLIT, 40), (EVAL_SPLIT, 10)])
def test_shipped_sample_has_every_class(split, per_class):
    images, labels, characters = read_split(SAMPLE_DIR, split)
    assert images.shape == (62 * per_class, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=62).tolist() == [per_class] * 62
    assert characters == [BYCLASS_CHARACTERS[label] for label in labels]
