"""Augmentation of line images (transform.augmentation): shapes and range kept, labels untouched,
reproducible per seed, strength 0 the identity, and each op doing what it says."""

import math

import numpy as np
import pytest
import tensorflow as tf

from data.features import IMAGE_KEY, LENGTH_KEY
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from transform.augmentation import (
    MAX_NOISE,
    augment_batch,
    augment_dataset,
    contrast,
    geometric,
    stroke_width,
)
from transform.line_synthesis import GlyphBank, synthesize_lines

TEXTS = ["Real", "hand", "wri7", "ting"]
MARGIN = 10  # background rows above and below the drawn lines


@pytest.fixture(scope="module")
def lines() -> tf.Tensor:
    """Four lines drawn from the embedded sample, 28x112, set in a 48x160 frame: float32
    [4, 48, 160, 1], ink bright on black, left-aligned, MARGIN empty rows above and below."""
    images, labels, _ = read_split(SAMPLE_DIR, "train")
    drawn, _ = synthesize_lines(
        tf.constant(TEXTS), tf.range(4, dtype=tf.int64), GlyphBank(images, labels), 4
    )
    return tf.image.pad_to_bounding_box(drawn[..., None], MARGIN, 0, 28 + 2 * MARGIN, 160)


def bar(top: int, bottom: int, left: int, right: int, shape=(4, 48, 160)) -> tf.Tensor:
    """Images holding one ink rectangle each."""
    images = np.zeros((*shape, 1), np.float32)
    images[:, top:bottom, left:right] = 1.0
    return tf.constant(images)


def per_image(value: float, batch: int = 4) -> tf.Tensor:
    return tf.fill([batch], value)


def column_centre(rows: np.ndarray) -> np.ndarray:
    """Ink-weighted mean column of each image's `rows` [B, R, W]."""
    weights = rows.sum(axis=1)
    return (weights * np.arange(rows.shape[2])).sum(axis=1) / weights.sum(axis=1)


# --- the batch and the dataset -------------------------------------------------------------------


@pytest.mark.parametrize("strength", [0.5, 1.0, 2.0])
def test_shape_dtype_and_range_are_kept(lines, strength):
    augmented = augment_batch(lines, tf.constant([0, 1]), strength)
    assert augmented.shape == lines.shape and augmented.dtype == tf.float32
    assert float(tf.reduce_min(augmented)) >= 0.0 and float(tf.reduce_max(augmented)) <= 1.0


def test_strength_zero_is_the_identity(lines):
    np.testing.assert_array_equal(augment_batch(lines, tf.constant([3, 4]), 0.0), lines)


def test_negative_strength_is_refused(lines):
    with pytest.raises(ValueError, match="augment_strength"):
        augment_batch(lines, tf.constant([0, 0]), -0.5)


def test_same_seed_same_images_other_seed_other_images(lines):
    first = augment_batch(lines, tf.constant([7, 0]), 1.0)
    np.testing.assert_array_equal(first, augment_batch(lines, tf.constant([7, 0]), 1.0))
    other = augment_batch(lines, tf.constant([7, 1]), 1.0)
    assert all(np.abs(first[i] - other[i]).max() > 0.1 for i in range(len(TEXTS)))


def test_every_image_is_changed_at_strength_one(lines):
    augmented = augment_batch(lines, tf.constant([0, 0]), 1.0)
    assert all(np.abs(augmented[i] - lines[i]).mean() > 0.01 for i in range(len(TEXTS)))


def test_fill_and_ops_leave_far_background_alone(lines):
    """Rows no op can move ink into hold only noise: the same noise as an empty image gets
    from the same seed (the noise depends on the seed and shape alone)."""
    seed = tf.constant([5, 5])
    augmented = augment_batch(lines, seed, 1.0).numpy()
    empty = augment_batch(tf.zeros_like(lines), seed, 1.0).numpy()
    far = np.r_[0:4, -4:0]
    np.testing.assert_array_equal(augmented[:, far], empty[:, far])
    assert empty.mean() < MAX_NOISE  # and the noise is faint


def test_what_comes_from_outside_the_image_is_background():
    """An image full of ink, zoomed out and kept left-aligned: the right and the top and bottom
    edges come from outside the image and are background, not stretched ink."""
    shrunk = geometric(
        tf.ones([1, 40, 100, 1]), per_image(0.0, 1), per_image(0.0, 1), per_image(0.9, 1)
    ).numpy()[0, ..., 0]
    assert shrunk[:, 92:].max() == 0 and shrunk[:1].max() == 0 and shrunk[-1:].max() == 0
    assert shrunk[4:36, :88].min() > 0.99  # and the inside is still ink


def test_dataset_augments_images_only_and_differs_per_epoch(lines):
    labels = tf.constant([[1, 2], [3, 4], [5, 6], [7, 8]], tf.int64)
    lengths = tf.constant([2, 2, 2, 2], tf.int64)
    batches = tf.data.Dataset.from_tensor_slices(
        ({IMAGE_KEY: lines, LENGTH_KEY: lengths}, labels)
    ).batch(2)
    augmented = augment_dataset(batches, 1.0, seed=3)
    assert augmented.element_spec[0][IMAGE_KEY].shape[1:] == lines.shape[1:]  # static, for Keras
    epochs = [list(augmented.as_numpy_iterator()) for _ in range(2)]
    rerun = list(augment_dataset(batches, 1.0, seed=3).as_numpy_iterator())
    for epoch in epochs:
        for (features, batch_labels), (original, original_labels) in zip(
            epoch, batches.as_numpy_iterator()
        ):
            np.testing.assert_array_equal(batch_labels, original_labels)
            np.testing.assert_array_equal(features[LENGTH_KEY], original[LENGTH_KEY])
            assert features[IMAGE_KEY].shape == original[IMAGE_KEY].shape
            assert np.abs(features[IMAGE_KEY] - original[IMAGE_KEY]).max() > 0.1
    first_images = [features[IMAGE_KEY] for features, _ in epochs[0]]
    assert np.abs(first_images[0] - epochs[1][0][0][IMAGE_KEY]).max() > 0.1  # fresh each epoch
    assert np.abs(first_images[0] - first_images[1]).max() > 0.1  # and each batch
    for (features, _), (again, _) in zip(epochs[0], rerun):  # reproducible per seed
        np.testing.assert_array_equal(features[IMAGE_KEY], again[IMAGE_KEY])


def test_dataset_at_strength_zero_passes_images_unchanged(lines):
    batches = tf.data.Dataset.from_tensor_slices(({IMAGE_KEY: lines}, tf.range(4))).batch(4)
    ((features, _),) = augment_dataset(batches, 0.0).as_numpy_iterator()
    np.testing.assert_array_equal(features[IMAGE_KEY], lines)


# --- each op ------------------------------------------------------------------------------------


def test_stroke_width_thickens_and_thins(lines):
    ink = float(tf.reduce_sum(lines))
    assert float(tf.reduce_sum(stroke_width(lines, per_image(1.0)))) > 1.5 * ink
    assert float(tf.reduce_sum(stroke_width(lines, per_image(-1.0)))) < 0.5 * ink
    half = float(tf.reduce_sum(stroke_width(lines, per_image(0.5))))
    assert ink < half < float(tf.reduce_sum(stroke_width(lines, per_image(1.0))))


def test_shear_slants_a_vertical_bar():
    images = bar(8, 40, 60, 64)
    sheared = geometric(images, per_image(0.3), per_image(0.0), per_image(1.0)).numpy()[..., 0]
    # x moves by 0.3 * (y - centre): the bottom rows (y 36..39) 30 pixels below the top ones (8..11).
    slant = column_centre(sheared[:, 36:40]) - column_centre(sheared[:, 8:12])
    np.testing.assert_allclose(slant, 0.3 * 28, atol=1.0)


def test_rotation_tilts_a_horizontal_bar():
    angle = math.radians(1.5)
    rotated = geometric(
        bar(22, 26, 10, 150), per_image(0.0), per_image(angle), per_image(1.0)
    ).numpy()[..., 0]
    rows = np.arange(48)[None, :]
    ends = [rotated[:, :, columns].sum(axis=2) for columns in (slice(12, 16), slice(144, 148))]
    left_row, right_row = [(end * rows).sum(axis=1) / end.sum(axis=1) for end in ends]
    np.testing.assert_allclose(right_row - left_row, math.tan(angle) * 132, atol=0.5)


def test_scale_zooms_about_the_ink_keeping_it_left_aligned():
    images = bar(14, 34, 20, 120)
    for scale in (0.9, 1.1):
        zoomed = geometric(images, per_image(0.0), per_image(0.0), per_image(scale)).numpy()[..., 0]
        columns = np.flatnonzero(zoomed[0].max(axis=0) > 0.5)
        rows = np.flatnonzero(zoomed[0].max(axis=1) > 0.5)
        assert abs(columns[0] - 20) <= 1, columns  # starts where it did
        assert abs(len(columns) - 100 * scale) <= 2 and abs(len(rows) - 20 * scale) <= 2


def test_slant_and_rotation_keep_the_line_start_on_screen(lines):
    """No ink is pushed off the left edge: the transformed ink box's leftmost corner is where
    the original box started, so the ink starts there or right of it, by at most the slant
    across the height (shear x scale x height)."""
    transformed = geometric(lines, per_image(-0.3), per_image(math.radians(-1.5)), per_image(1.1))
    for before, after in zip(lines.numpy()[..., 0], transformed.numpy()[..., 0]):
        first = [np.flatnonzero(image.max(axis=0) > 0.1)[0] for image in (before, after)]
        assert -1 <= first[1] - first[0] <= 0.3 * 1.1 * 48, first


def test_contrast_sets_ink_intensity_and_gamma():
    images = tf.constant(np.array([0.0, 0.25, 1.0], np.float32).reshape(1, 1, 3, 1))
    dimmed = contrast(images, per_image(0.7, 1), per_image(2.0, 1)).numpy().ravel()
    np.testing.assert_allclose(dimmed, [0.0, 0.7 * 0.25**2, 0.7], rtol=1e-6)


def test_noise_is_added_to_an_empty_image():
    noisy = augment_batch(tf.zeros([8, 16, 64, 1]), tf.constant([1, 1]), 1.0).numpy()
    assert (noisy > 0).mean() > 0.3  # half the Gaussian noise is positive (the rest clipped)
    assert noisy.std() <= MAX_NOISE
