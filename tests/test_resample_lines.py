"""The Trainer's option to draw fresh lines every epoch reuses Transform's drawing function."""

import numpy as np
import tensorflow as tf

from data.features import GLYPH_SET_KEY, IMAGE_KEY, SEED_KEY, TEXT_KEY
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from trainer.config import ExperimentConfig
from trainer.datasets.emnist_lines import redraw_every_epoch
from transform.line_preprocessing import draw_lines
from transform.line_synthesis import GlyphBank, load_glyph_bank, save_glyph_bank


def test_each_epoch_redraws_the_same_texts_with_new_glyphs(tmp_path):
    images, labels, _ = read_split(SAMPLE_DIR, "train")
    banks = [str(tmp_path / "train.npz"), str(tmp_path / "test.npz")]
    for path in banks:
        save_glyph_bank(path, GlyphBank(images, labels, max_per_class=10))
    config = ExperimentConfig.from_dict(
        {"model": "LineModel", "dataset_args": {"max_length": 4, "resample_every_epoch": True}}
    )
    features = {
        TEXT_KEY: tf.constant(["ab 1", "Zz"]),
        SEED_KEY: tf.constant([7, 8], tf.int64),
        GLYPH_SET_KEY: tf.constant([0, 1], tf.int64),
        IMAGE_KEY: tf.zeros([2, 28, 112, 1]),
    }
    labels_in = tf.constant([[0, 1], [2, 3]], tf.int64)
    dataset = tf.data.Dataset.from_tensors((features, labels_in))
    epoch = tf.Variable(0, dtype=tf.int64)
    redrawn = redraw_every_epoch(dataset, config, banks, epoch)

    first = next(iter(redrawn))[0][IMAGE_KEY].numpy()
    epoch.assign(1)
    second, labels_out = next(iter(redrawn))
    second = second[IMAGE_KEY].numpy()

    assert first.shape == (2, 28, 112, 1) and first.max() > 0
    assert not np.array_equal(first, second)  # new glyphs and overlaps each epoch
    np.testing.assert_array_equal(labels_out.numpy(), labels_in.numpy())  # same texts
    synthesis = {"max_length": 4, "min_overlap": 0.0, "max_overlap": 0.33}
    expected, _ = draw_lines(
        features[TEXT_KEY],
        features[SEED_KEY],
        features[GLYPH_SET_KEY],
        [load_glyph_bank(p) for p in banks],
        synthesis,
    )
    np.testing.assert_array_equal(first, expected.numpy())  # epoch 0 draws Transform's lines
