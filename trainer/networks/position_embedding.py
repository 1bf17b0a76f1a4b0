"""A Keras layer of line_attention's, in its own module because defining it loads Keras."""

import keras


class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each position to a [batch, length, dim] sequence."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=tuple(input_shape[1:]), initializer="zeros")

    def call(self, x):
        return x + self.positions
