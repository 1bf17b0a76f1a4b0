"""Random variations of real handwriting line images, for the Trainer's train split only.

Real collections hold few writers, so the network should not learn their particular slant, size,
pen or scan: each training batch is redrawn with a random per-image

- slant: horizontal shear, x += shear * (y - centre), shear in +-0.3 (about +-17 degrees);
- scale: zoom in 0.9-1.1 about the ink's centre;
- rotation: +-1.5 degrees about the ink's centre (a 1000-pixel line's ends move +-13 pixels);
- stroke width: a blend towards the 3x3 erosion (thinner) or dilation (thicker) of the image,
  by an amount in [-1, 1] (1: the full erosion or dilation);
- contrast: ink intensity x0.7-1 and gamma 1/1.5-1.5 (faint or heavy pens and scans);
- noise: Gaussian with a standard deviation in 0-0.05,

ranges at `augment_strength` 1, each scaled by the strength (0: the images unchanged; above 1
the ranges widen alike, but the stroke width's amount stops at +-1). The geometric ops are one
projective transform per image, so the image is resampled once, with background (0) filling
what comes from outside it; lines stay left-aligned, as Transform makes them, by shifting the
transformed line so the leftmost corner of its ink box lands where the box started.

Images are normalized lines, float32 [B, H, W, 1] in [0, 1], ink bright on a dark background
(transform.preprocessing.decode_images). All randomness is stateless, keyed by a seed, so a
batch's augmentation is reproducible.
"""

import math

import tensorflow as tf

from data.features import IMAGE_KEY

MAX_SHEAR = 0.3
MAX_ZOOM = 0.1
MAX_ROTATION = math.radians(1.5)
MAX_INK_DIMMING = 0.3
MAX_LOG_GAMMA = math.log(1.5)
MAX_NOISE = 0.05
_INK = 0.1  # columns with a pixel above this hold ink (where the line's ink box starts and ends)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, strength: float) -> tf.Tensor:
    """Augmented images, same shape, in [0, 1]; `seed`: int [2], as for tf.random.stateless_*."""
    if strength < 0:
        raise ValueError(f"augment_strength must not be negative, got {strength}")
    images = tf.convert_to_tensor(images, tf.float32)
    shape = images.shape  # static: the projective transform's output loses height and width
    param_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    # One uniform in [-1, 1] per image and parameter, scaled by the strength.
    u = strength * tf.random.stateless_uniform([tf.shape(images)[0], 7], param_seed, -1.0, 1.0)
    images = stroke_width(images, tf.clip_by_value(u[:, 0], -1.0, 1.0))
    images = geometric(
        images, MAX_SHEAR * u[:, 1], MAX_ROTATION * u[:, 2], 1.0 + MAX_ZOOM * u[:, 3]
    )
    images = contrast(
        images, 1.0 - MAX_INK_DIMMING * tf.abs(u[:, 4]), tf.exp(MAX_LOG_GAMMA * u[:, 5])
    )
    sigma = MAX_NOISE * tf.abs(u[:, 6])[:, None, None, None]
    noise = tf.random.stateless_normal(tf.shape(images), noise_seed) * sigma
    return tf.ensure_shape(tf.clip_by_value(images + noise, 0.0, 1.0), shape)


def augment_dataset(dataset: tf.data.Dataset, strength: float, seed: int = 0) -> tf.data.Dataset:
    """Augments features[IMAGE_KEY] of a dataset of batches (features, labels); labels and other
    features pass unchanged. Every batch gets its own seed, different in every epoch (a new
    iteration of the dataset) and the same in every run with this `seed`."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def augment(batch, batch_seed):
        features, labels = batch
        return {
            **features,
            IMAGE_KEY: augment_batch(features[IMAGE_KEY], batch_seed, strength),
        }, labels

    return tf.data.Dataset.zip(dataset, seeds).map(augment, num_parallel_calls=tf.data.AUTOTUNE)


def stroke_width(images: tf.Tensor, amounts: tf.Tensor) -> tf.Tensor:
    """Thicker strokes for amounts [B] > 0, thinner for < 0: a blend of each image with its 3x3
    dilation (max pooling) or erosion (min pooling), by |amount| in [0, 1]."""
    dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
    amounts = amounts[:, None, None, None]
    return images + tf.abs(amounts) * (tf.where(amounts > 0, dilated, eroded) - images)


def geometric(
    images: tf.Tensor, shears: tf.Tensor, angles: tf.Tensor, scales: tf.Tensor
) -> tf.Tensor:
    """Each image sheared, rotated (radians) and scaled about the centre of its ink box (per-image
    [B] parameters), then shifted so the box's left edge stays where it was; background fills."""
    shape = tf.shape(images)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    has_ink = tf.reduce_max(images, axis=[1, 3]) > _INK  # [B, W]; an empty image: the whole width
    left = tf.cast(tf.argmax(has_ink, axis=1), tf.float32)
    right = width - tf.cast(tf.argmax(tf.reverse(has_ink, [1]), axis=1), tf.float32)
    cx, cy = (left + right - 1.0) / 2.0, (height - 1.0) / 2.0
    cos, sin = tf.cos(angles), tf.sin(angles)
    # Forward map about (cx, cy): scale * rotation * shear; its first row gives where the box's
    # corners land, hence the shift that puts the leftmost one back at `left`.
    a00, a01 = scales * cos, scales * (cos * shears - sin)
    shift = left - (cx + a00 * (left - cx) - tf.abs(a01) * cy)
    # The op maps output pixels to input pixels: the inverse, shear^-1 * rotation^-1 / scale.
    m00, m01 = (cos + shears * sin) / scales, (sin - shears * cos) / scales
    m10, m11 = -sin / scales, cos / scales
    x0 = cx + shift  # the centre's output position
    transforms = tf.stack(
        [
            m00,
            m01,
            cx - m00 * x0 - m01 * cy,
            m10,
            m11,
            cy - m10 * x0 - m11 * cy,
            tf.zeros_like(m00),
            tf.zeros_like(m00),
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def contrast(images: tf.Tensor, intensities: tf.Tensor, gammas: tf.Tensor) -> tf.Tensor:
    """intensity * image ** gamma per image ([B] each): background stays 0, full ink becomes the
    intensity, gamma < 1 brightens faint ink and gamma > 1 dims it."""
    powered = tf.pow(tf.maximum(images, 0.0), gammas[:, None, None, None])
    return intensities[:, None, None, None] * powered
