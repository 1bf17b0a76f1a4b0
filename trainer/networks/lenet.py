"""LeNet-style convolutional network, as in the FSDL labs."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a network is built, so the config reads
    import keras  # the builders' signatures without loading TensorFlow


def lenet(input_shape: tuple, num_classes: int, dropout: float = 0.2) -> "keras.Model":
    """Two 3x3 convolutions, max pooling, a 128-unit dense layer, dropout after each stage."""
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Reshape((*input_shape[:2], 1))(inputs)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="lenet")
