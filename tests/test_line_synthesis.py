"""Synthetic EMNIST lines: glyph bank, layout, labels, determinism, and where the function runs."""

import numpy as np
import pytest
import tensorflow as tf

from data.emnist import BYCLASS_CHARACTERS
from data.errors import DatasetError
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.vocabulary import LINE_CHARACTERS, PAD_INDEX, SPACE_INDEX
from transform.line_synthesis import (
    GlyphBank,
    emnist_glyph_bank,
    load_glyph_bank,
    save_glyph_bank,
    synthesize_lines,
)

SIZE = 28
NUM_CLASSES = len(BYCLASS_CHARACTERS)
TEXTS = ["Hello World 42", "a", "", "The quick brown fox jumps", "zz Top"]


def random_bank(per_class: int = 3, seed: int = 0) -> GlyphBank:
    """`per_class` random-noise glyphs for each class: any two glyphs differ."""
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, size=(NUM_CLASSES * per_class, SIZE, SIZE), dtype=np.uint8)
    return GlyphBank(images, np.arange(NUM_CLASSES * per_class) % NUM_CLASSES)


def left_edge_bank() -> GlyphBank:
    """Every glyph a single white column at its left edge: the image shows where glyphs start."""
    images = np.zeros((NUM_CLASSES, SIZE, SIZE), np.uint8)
    images[:, :, 0] = 255
    return GlyphBank(images, np.arange(NUM_CLASSES))


BANK = random_bank()


def draw(texts, seeds, bank=BANK, max_length=30, min_overlap=0.0, max_overlap=0.33):
    images, labels = synthesize_lines(
        tf.constant(texts), tf.constant(seeds, tf.int64), bank, max_length, min_overlap, max_overlap
    )
    return images.numpy(), labels.numpy()


def test_shapes_dtypes_labels_and_padding():
    images, labels = draw(TEXTS, range(len(TEXTS)))
    assert images.shape == (len(TEXTS), SIZE, 30 * SIZE) and images.dtype == np.float32
    assert labels.shape == (len(TEXTS), 30) and labels.dtype == np.int64
    assert images.min() >= 0 and images.max() <= 1
    for text, label in zip(TEXTS, labels):
        assert label[: len(text)].tolist() == [LINE_CHARACTERS.index(c) for c in text]
        assert (label[len(text) :] == PAD_INDEX).all()
    assert labels[0, 5] == SPACE_INDEX
    assert not images[2].any()  # empty text: an empty line


def test_zero_overlap_places_one_bank_glyph_of_the_class_per_block():
    text = "Ab 9z"
    images, _ = draw([text], [3], max_length=6, max_overlap=0.0)
    pixels = np.round(images[0] * 255).astype(np.uint8)
    for i, character in enumerate(text + " "):  # the padding block is empty too
        block = pixels[:, i * SIZE : (i + 1) * SIZE]
        if character == " ":
            assert not block.any()
        else:
            glyphs = BANK.images[BANK.labels == BYCLASS_CHARACTERS.index(character)]
            assert any((block == glyph).all() for glyph in glyphs), f"block {i} ({character!r})"


def test_overlap_is_uniform_per_line_within_bounds():
    text = "x" * 12
    images, _ = draw(
        [text] * 64,
        range(64),
        bank=left_edge_bank(),
        max_length=12,
        min_overlap=0.2,
        max_overlap=0.4,
    )
    steps = []
    for image in images:
        starts = np.flatnonzero(image[0])
        assert len(starts) == len(text) and starts[0] == 0
        # x_i = round(i * step) for one step = 28 * (1 - overlap) with overlap in [0.2, 0.4]:
        i = np.arange(1, len(text))
        low, high = max((starts[1:] - 0.5) / i), min((starts[1:] + 0.5) / i)
        assert max(low, SIZE * 0.6) <= min(high, SIZE * 0.8), starts
        steps.append(low)
    assert max(steps) - min(steps) > SIZE * 0.15  # drawn per line, spread over the range


def test_fixed_overlap_positions_and_extent():
    squares = GlyphBank(np.full((NUM_CLASSES, SIZE, SIZE), 255, np.uint8), np.arange(NUM_CLASSES))
    images, _ = draw(
        ["abcd", "ab"], [0, 1], bank=squares, max_length=4, min_overlap=0.25, max_overlap=0.25
    )
    assert images[0, 0].nonzero()[0].max() + 1 == 3 * 21 + SIZE  # glyph i at x = 21 i
    assert images[1, 0].nonzero()[0].max() + 1 == 21 + SIZE
    assert (images[:, :, SIZE * 4 - 1] == 0).all()  # padded on the right with black


def test_same_seed_same_image_independent_of_batch():
    images, labels = draw(TEXTS, [10, 11, 12, 13, 14])
    order = [3, 0, 4, 1, 2]
    shuffled, _ = draw([TEXTS[i] for i in order], [10 + i for i in order])
    np.testing.assert_array_equal(shuffled, images[order])
    alone, _ = draw(TEXTS[3:4], [13])
    np.testing.assert_array_equal(alone[0], images[3])
    other, other_labels = draw(TEXTS, [20, 21, 22, 23, 24])
    np.testing.assert_array_equal(other_labels, labels)
    assert all(not np.array_equal(other[i], images[i]) for i in (0, 3, 4))


def test_runs_in_tf_function_and_tf_data():
    expected, expected_labels = draw(TEXTS, range(5))
    draw_fn = tf.function(
        lambda t, s: synthesize_lines(t, s, BANK, 30),
        input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int64)],
    )
    images, labels = draw_fn(tf.constant(TEXTS), tf.range(5, dtype=tf.int64))
    np.testing.assert_array_equal(images.numpy(), expected)
    np.testing.assert_array_equal(labels.numpy(), expected_labels)
    dataset = (
        tf.data.Dataset.from_tensor_slices((TEXTS, tf.range(5, dtype=tf.int64)))
        .batch(2)
        .map(lambda t, s: synthesize_lines(t, s, BANK, 30))
    )
    batches = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), expected)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), expected_labels)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_length": 0}, "max_length"),
        ({"min_overlap": -0.1}, "min_overlap"),
        ({"min_overlap": 0.5, "max_overlap": 0.4}, "max_overlap"),
        ({"max_overlap": 1.0}, "max_overlap"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        draw(["ab"], [0], **kwargs)


def test_too_long_or_unknown_text_fails_clearly():
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length=5"):
        draw(["abcdef"], [0], max_length=5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length=5"):
        list(
            tf.data.Dataset.from_tensors((["abcdef"], [0])).map(
                lambda t, s: synthesize_lines(t, s, BANK, 5)
            )
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="GLYPH_CHARACTERS"):
        draw(["it's"], [0])


def test_bank_needs_every_class_and_caps_deterministically():
    labels = np.arange(NUM_CLASSES * 4) % NUM_CLASSES  # < 256 examples
    images = np.zeros((len(labels), SIZE, SIZE), np.uint8)
    images[:, 0, 0] = np.arange(len(labels))  # which example each glyph is
    capped = GlyphBank(images, labels, max_per_class=2, seed=1)
    assert capped.counts.tolist() == [2] * NUM_CLASSES and len(capped) == 2 * NUM_CLASSES
    np.testing.assert_array_equal(capped.labels, np.repeat(np.arange(NUM_CLASSES), 2))
    np.testing.assert_array_equal(labels[capped.images[:, 0, 0]], capped.labels)
    np.testing.assert_array_equal(
        GlyphBank(images, labels, max_per_class=2, seed=1).images, capped.images
    )
    missing = labels != BYCLASS_CHARACTERS.index("q")
    with pytest.raises(DatasetError, match="'q'"):
        GlyphBank(images[missing], labels[missing])
    with pytest.raises(ValueError, match="uint8"):
        GlyphBank(images.astype(np.float32), labels)


def test_bank_save_load_round_trip(tmp_path):
    path = str(tmp_path / "bank.npz")
    save_glyph_bank(path, BANK)
    loaded = load_glyph_bank(path)
    np.testing.assert_array_equal(loaded.images, BANK.images)
    np.testing.assert_array_equal(loaded.labels, BANK.labels)
    with pytest.raises(DatasetError, match="missing.npz"):
        load_glyph_bank(str(tmp_path / "missing.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="junk.npz"):
        load_glyph_bank(str(tmp_path / "junk.npz"))


def test_emnist_glyph_bank_takes_train_glyphs_for_train_and_test_glyphs_for_eval(tmp_path):
    from test_data_emnist import write_official_files

    labels = np.arange(NUM_CLASSES).repeat(2)
    for part, level in (("train", 100), ("test", 200)):
        write_official_files(
            tmp_path, np.full((len(labels), SIZE, SIZE), level, np.uint8), labels, part
        )
    train = emnist_glyph_bank(tmp_path, TRAIN_SPLIT, max_per_class=1)
    evaluation = emnist_glyph_bank(tmp_path, EVAL_SPLIT)
    assert (train.images == 100).all() and (evaluation.images == 200).all()
    assert len(train) == NUM_CLASSES and len(evaluation) == 2 * NUM_CLASSES


def test_emnist_glyph_bank_without_files_is_the_embedded_samples_split():
    train, evaluation = (emnist_glyph_bank(None, split, 5) for split in (TRAIN_SPLIT, EVAL_SPLIT))
    assert train.counts.tolist() == evaluation.counts.tolist() == [5] * NUM_CLASSES
    assert not np.array_equal(train.images, evaluation.images)
