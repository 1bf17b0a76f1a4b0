"""Random variations of pages and their target masks, for the line detector's train split only.

A page collection holds few scans, so the detector should not learn where their lines sit, how
big or slanted the writing is or how dark the scan: each training batch is redrawn with one
random affine map per page, applied alike to the page (bilinear) and to its mask (nearest
neighbour, so every pixel keeps a class of common.pages and lines keep their labels):

- shift: up to MAX_SHIFT of the page's width and height each way;
- zoom: 0.9-1.1 about the page centre;
- shear: horizontal, x += shear * (y - centre), shear in +-0.15;
- rotation: +-2 degrees about the page centre;

what comes from outside the page is background (image 0, mask BACKGROUND). The page alone then
gets the line augmentation's contrast (ink x0.7-1, gamma 1/1.5-1.5;
transform.augmentation.contrast) and Gaussian noise (standard deviation 0-0.05).

Pages are float32 [B, H, W, 1] in [0, 1], ink bright on a dark background, as the page
Transform writes them; masks int [B, H, W]. All randomness is stateless, keyed by a seed, so a
batch's augmentation is reproducible.
"""

import math

import tensorflow as tf

from common.pages import BACKGROUND
from transform.augmentation import MAX_INK_DIMMING, MAX_LOG_GAMMA, MAX_NOISE, contrast

MAX_SHIFT = 0.05
MAX_ZOOM = 0.1
MAX_SHEAR = 0.15
MAX_ROTATION = math.radians(2.0)


def augment_pages(images, masks, seed=None) -> tuple:
    """(augmented images, their masks), shapes and dtypes kept. `seed`: int [2] as for
    tf.random.stateless_*; None draws one from TensorFlow's global generator (seeded by
    keras.utils.set_random_seed in training, so a run is still reproducible)."""
    images = tf.convert_to_tensor(images, tf.float32)
    masks = tf.convert_to_tensor(masks)
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
    param_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    u = tf.random.stateless_uniform([tf.shape(images)[0], 8], param_seed, -1.0, 1.0)
    transforms = page_transforms(
        tf.shape(images)[1:3],
        shifts=MAX_SHIFT * u[:, 0:2],
        scales=1.0 + MAX_ZOOM * u[:, 2],
        shears=MAX_SHEAR * u[:, 3],
        angles=MAX_ROTATION * u[:, 4],
    )
    moved = _warp(images, transforms, "BILINEAR")
    moved_masks = _warp(tf.cast(masks[..., None], tf.float32), transforms, "NEAREST")[..., 0]
    moved = contrast(
        moved, 1.0 - MAX_INK_DIMMING * tf.abs(u[:, 5]), tf.exp(MAX_LOG_GAMMA * u[:, 6])
    )
    sigma = MAX_NOISE * tf.abs(u[:, 7])[:, None, None, None]
    moved = moved + tf.random.stateless_normal(tf.shape(moved), noise_seed) * sigma
    return (
        tf.ensure_shape(tf.clip_by_value(moved, 0.0, 1.0), images.shape),
        tf.ensure_shape(tf.cast(tf.round(moved_masks), masks.dtype), masks.shape),
    )


def page_transforms(size, shifts, scales, shears, angles) -> tf.Tensor:
    """[B, 8] projective transforms (output pixel -> input pixel, as ImageProjectiveTransformV3
    takes them) of the forward map: zoom * rotation * shear about the centre of a page of `size`
    (height, width), then a shift by `shifts` [B, 2] (fractions of the width and height)."""
    size = tf.cast(size, tf.float32)
    cy, cx = (size[0] - 1.0) / 2.0, (size[1] - 1.0) / 2.0
    dx, dy = shifts[:, 0] * size[1], shifts[:, 1] * size[0]
    cos, sin = tf.cos(angles), tf.sin(angles)
    # The inverse of zoom * rotation * shear: shear^-1 * rotation^-1 / zoom.
    m00, m01 = (cos + shears * sin) / scales, (sin - shears * cos) / scales
    m10, m11 = -sin / scales, cos / scales
    ox, oy = cx + dx, cy + dy  # where the centre lands
    zeros = tf.zeros_like(m00)
    return tf.stack(
        [m00, m01, cx - m00 * ox - m01 * oy, m10, m11, cy - m10 * ox - m11 * oy, zeros, zeros],
        axis=1,
    )


def _warp(images: tf.Tensor, transforms: tf.Tensor, interpolation: str) -> tf.Tensor:
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=float(BACKGROUND),
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )
