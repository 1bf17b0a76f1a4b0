"""Transform's preprocessing: encoded image bytes -> normalized float images.

The same function runs in the Transform component over the training data and, through the
transform graph, inside every exported serving signature, so a user's PNG or JPEG of any size is
treated exactly like a training image.
"""

import tensorflow as tf

from data.features import IMAGE_KEY, LABEL_KEY

IMAGE_SIZE = 28


def decode_images(image_bytes: tf.Tensor, size: int = IMAGE_SIZE) -> tf.Tensor:
    """Decodes a batch of PNG/JPEG/GIF/BMP bytes to float32 [batch, size, size, 1] in [0, 1].

    Images are converted to one channel (transparency composited over white) and scaled to fit `size` x `size` keeping their aspect
    ratio (black padding). Like EMNIST, the model expects light ink on a dark background: an image
    whose mean intensity is above one half (dark ink on paper) is inverted first.
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
        return tf.image.resize_with_pad(gray, size, size)

    images = tf.map_fn(
        decode_one,
        tf.reshape(image_bytes, [-1]),
        fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32),
    )
    return tf.clip_by_value(images, 0.0, 1.0)


def preprocessing_fn(inputs: dict) -> dict:
    """tf.Transform entry point: decoded, normalized image and the integer label."""
    return {
        IMAGE_KEY: decode_images(inputs[IMAGE_KEY]),
        LABEL_KEY: tf.reshape(inputs[LABEL_KEY], [-1]),
    }
