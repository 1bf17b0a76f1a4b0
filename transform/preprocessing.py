"""Transform's preprocessing: encoded image bytes -> normalized float images.

The same function runs in the Transform component over the training data and, through the
transform graph, inside every exported serving signature, so a user's PNG or JPEG of any size is
treated exactly like a training image.
"""

import tensorflow as tf

from data.features import IMAGE_KEY, IMAGE_SIZE, LABEL_KEY


def decode_images(
    image_bytes: tf.Tensor,
    height: int = IMAGE_SIZE,
    width: int = IMAGE_SIZE,
    left_align=False,
    stretch_contrast=False,
) -> tf.Tensor:
    """Decodes a batch of PNG/JPEG/GIF/BMP bytes to float32 [batch, height, width, 1] in [0, 1].

    Images are converted to one channel (transparency composited over white) and scaled to fit
    `height` x `width` keeping their aspect ratio, centred (characters) or left-aligned (lines,
    which are read from the left), with black padding. Like EMNIST, the models expect light ink on
    a dark background: an image whose mean intensity is above one half (dark ink on paper) is
    inverted first. With `stretch_contrast` (scans of real handwriting, whose paper is seldom
    white nor their ink black), the background level (the median) becomes 0 and the brightest
    ink 1 before scaling.
    """

    def decode_one(encoded: tf.Tensor) -> tf.Tensor:
        image = tf.image.convert_image_dtype(
            tf.io.decode_image(encoded, expand_animations=False), tf.float32
        )
        channels = tf.shape(image)[-1]
        # Gray+alpha or RGBA: composite over white paper, as a viewer would show it.
        has_alpha = tf.equal(channels % 2, 0)
        alpha = tf.cond(has_alpha, lambda: image[..., -1:], lambda: tf.ones_like(image[..., :1]))
        color = tf.cond(has_alpha, lambda: image[..., :-1], lambda: image)
        gray = tf.cond(
            tf.equal(tf.shape(color)[-1], 3), lambda: tf.image.rgb_to_grayscale(color), lambda: color
        )
        gray = alpha * gray + (1.0 - alpha)
        gray = tf.cond(tf.reduce_mean(gray) > 0.5, lambda: 1.0 - gray, lambda: gray)
        if stretch_contrast:
            gray = _stretch(gray)
        return _fit(gray, height, width, left_align)

    images = tf.map_fn(
        decode_one,
        tf.reshape(image_bytes, [-1]),
        fn_output_signature=tf.TensorSpec([height, width, 1], tf.float32),
    )
    return tf.clip_by_value(images, 0.0, 1.0)


def _stretch(gray: tf.Tensor) -> tf.Tensor:
    """Background (the median level) to 0, the brightest pixel to 1."""
    values = tf.sort(tf.reshape(gray, [-1]))
    background = values[tf.size(values) // 2]
    ink = values[-1]
    return tf.clip_by_value((gray - background) / tf.maximum(ink - background, 1e-3), 0.0, 1.0)


def _fit(image: tf.Tensor, height: int, width: int, left_align: bool) -> tf.Tensor:
    """Scales `image` to fit the frame keeping its aspect ratio, then pads it with black."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(height / size[0], width / size[1])
    new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    resized = tf.image.resize(image, new_size, antialias=True)
    top = (height - new_size[0]) // 2
    left = 0 if left_align else (width - new_size[1]) // 2
    return tf.image.pad_to_bounding_box(resized, top, left, height, width)


def preprocessing_fn(inputs: dict) -> dict:
    """tf.Transform entry point: decoded, normalized image and the integer label."""
    return {
        IMAGE_KEY: decode_images(inputs[IMAGE_KEY]),
        LABEL_KEY: tf.reshape(inputs[LABEL_KEY], [-1]),
    }
