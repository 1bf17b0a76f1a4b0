"""Transform's preprocessing for real handwriting lines: encoded line image + text -> a
normalized image and character labels.

Images are normalized exactly as the exported model normalizes a user's line
(`decode_images` with contrast stretch): gray, ink bright on a dark background (a light page is
inverted), the background level moved to 0 and the brightest ink to 1, then scaled to the fixed
height keeping the aspect ratio and left-aligned in the maximum width. A line wider than that at
the fixed height is scaled down as a whole to fit (never cut), so its characters get narrower.

Labels are class indices into data.vocabulary.LINE_CHARACTERS padded with PAD_INDEX to
`max_length`; data.lines already mapped every text into that charset and skipped longer lines,
so an unknown character or an over-long text here fails the run, naming the cause.

`custom_config`: {"height": int, "max_width": int, "max_length": int}.
"""

import tensorflow as tf

from data.features import IMAGE_KEY, LABEL_KEY, LENGTH_KEY, SOURCE_KEY, TEXT_KEY
from data.vocabulary import LINE_CHARACTERS, PAD_INDEX
from transform.preprocessing import decode_images


def text_to_labels(texts: tf.Tensor, max_length: int) -> tuple:
    """(labels int64 [B, max_length] padded with PAD_INDEX, lengths int64 [B])."""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(LINE_CHARACTERS)), tf.range(len(LINE_CHARACTERS), dtype=tf.int64)
        ),
        default_value=-1,
    )
    classes = tf.ragged.map_flat_values(table.lookup, tf.strings.unicode_split(texts, "UTF-8"))
    lengths = classes.row_lengths()
    checks = [
        tf.debugging.assert_non_negative(
            classes.flat_values, message="line text has characters outside LINE_CHARACTERS"
        ),
        tf.debugging.assert_less_equal(
            lengths,
            tf.constant(max_length, tf.int64),
            message=f"line text longer than max_length={max_length}",
        ),
    ]
    with tf.control_dependencies(checks):
        labels = classes.to_tensor(default_value=PAD_INDEX, shape=[None, max_length])
    return labels, lengths


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """tf.Transform entry point: normalized image, labels, length and source (for slicing)."""
    flat = {key: tf.reshape(value, [-1]) for key, value in inputs.items()}
    images = decode_images(
        flat[IMAGE_KEY],
        custom_config["height"],
        custom_config["max_width"],
        left_align=True,
        stretch_contrast=True,
    )
    labels, lengths = text_to_labels(flat[TEXT_KEY], custom_config["max_length"])
    return {IMAGE_KEY: images, LABEL_KEY: labels, LENGTH_KEY: lengths, SOURCE_KEY: flat[SOURCE_KEY]}
