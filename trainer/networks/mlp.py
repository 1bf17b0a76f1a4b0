"""Multi-layer perceptron over the flattened image, as in the FSDL labs."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a network is built, so the config reads
    import keras  # the builders' signatures without loading TensorFlow


def mlp(
    input_shape: tuple,
    num_classes: int,
    layer_size: int = 128,
    dropout: float = 0.2,
    num_layers: int = 3,
) -> "keras.Model":
    """`num_layers` dense ReLU layers of `layer_size` units, each followed by dropout."""
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten()(inputs)
    for _ in range(num_layers):
        x = keras.layers.Dense(layer_size, activation="relu")(x)
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mlp")
