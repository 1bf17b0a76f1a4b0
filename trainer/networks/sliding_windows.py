"""A layer that cuts an image into overlapping full-height windows along its width."""

import keras
import tensorflow as tf


class SlidingWindows(keras.layers.Layer):
    """[batch, height, width, channels] -> [batch, windows, height, window_width, channels]."""

    def __init__(self, window_width: int, window_stride: int, **kwargs):
        super().__init__(**kwargs)
        self.window_width = window_width
        self.window_stride = window_stride

    def call(self, images):
        windows = tf.signal.frame(images, self.window_width, self.window_stride, axis=2)
        return tf.transpose(windows, [0, 2, 1, 3, 4])

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        steps = (width - self.window_width) // self.window_stride + 1
        return (batch, steps, height, self.window_width, channels)

    def get_config(self):
        return {**super().get_config(), "window_width": self.window_width,
                "window_stride": self.window_stride}
