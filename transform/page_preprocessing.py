"""Transform's preprocessing for pages: encoded page + mask PNG -> a normalized S x S page and
its per-pixel classes, the line detector's input and label.

`decode_pages` is also how the exported detector normalizes a user's page (trainer.models.
line_detector), so a page is seen the same in training and in serving: gray (transparency
composited over white paper), ink bright on a dark background (a light page is inverted; the
decoder lines and characters use, `transform.preprocessing.decode_gray`), stretched to S x S with no padding (common.pages),
then the background level (the median) moved to 0 and the brightest ink to 1.

The mask PNG (data.page_masks, already S x S) becomes int64 classes of common.pages under
LABEL_KEY, the label the Trainer reads; a mask of another size (examples prepared for another
`page_size`) or with a class outside common.pages fails the run, naming the cause.

`custom_config`: {"page_size": S}.
"""

import tensorflow as tf

from common.pages import MASK_KEY, PAGE_CLASSES
from data.features import IMAGE_KEY, LABEL_KEY, LINE_COUNT_KEY, SOURCE_KEY
from transform.preprocessing import decode_gray, stretch_levels


def decode_pages(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """A batch of encoded pages (PNG/JPEG/GIF/BMP, any size) -> float32 [B, size, size, 1] in
    [0, 1], ink 1 and background 0."""

    def decode_one(encoded: tf.Tensor) -> tf.Tensor:
        return stretch_levels(tf.image.resize(decode_gray(encoded), [size, size], antialias=True))

    images = tf.map_fn(
        decode_one,
        tf.reshape(image_bytes, [-1]),
        fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32),
    )
    return tf.clip_by_value(images, 0.0, 1.0)


def decode_masks(mask_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """A batch of mask PNGs of size x size -> int64 [B, size, size] of common.pages classes."""

    def decode_one(encoded: tf.Tensor) -> tf.Tensor:
        mask = tf.io.decode_png(encoded, channels=1)
        check = tf.debugging.assert_equal(
            tf.shape(mask)[:2],
            tf.constant([size, size]),
            message=f"page mask is not {size}x{size}: examples prepared for another page_size",
        )
        with tf.control_dependencies([check]):
            return tf.reshape(mask, [size, size])

    masks = tf.map_fn(
        decode_one,
        tf.reshape(mask_bytes, [-1]),
        fn_output_signature=tf.TensorSpec([size, size], tf.uint8),
    )
    check = tf.debugging.assert_less(
        masks,
        tf.constant(len(PAGE_CLASSES), tf.uint8),
        message=f"page mask has a class outside {PAGE_CLASSES}",
    )
    with tf.control_dependencies([check]):
        return tf.cast(masks, tf.int64)


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """tf.Transform entry point: the page, its classes (the label), and source and line count
    (for slicing)."""
    flat = {key: tf.reshape(value, [-1]) for key, value in inputs.items()}
    size = custom_config["page_size"]
    return {
        IMAGE_KEY: decode_pages(flat[IMAGE_KEY], size),
        LABEL_KEY: decode_masks(flat[MASK_KEY], size),
        SOURCE_KEY: flat[SOURCE_KEY],
        LINE_COUNT_KEY: flat[LINE_COUNT_KEY],
    }
