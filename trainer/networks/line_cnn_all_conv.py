"""All-convolutional sliding-window line reader (FSDL's line_cnn_all_conv): one softmax per
character position, with a padding class after the end of the text."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a network is built, so the config reads
    import keras  # the builders' signatures without loading TensorFlow


def check_input(
    input_shape: tuple, output_length: int, window_width: int = 16, window_stride: int = 8, **_
) -> None:
    """Refuses a geometry with fewer windows than characters (plain arithmetic: the config
    checks it before TensorFlow is loaded)."""
    width = input_shape[1]
    num_windows = (width - window_width) // window_stride + 1
    if num_windows < output_length:
        raise ValueError(
            f"network_args: window_width {window_width} and window_stride {window_stride} give "
            f"{num_windows} windows over a {width}-pixel line, fewer than the {output_length} "
            "characters it must read"
        )


def line_cnn_all_conv(
    input_shape: tuple,
    num_classes: int,
    output_length: int,
    window_width: int = 16,
    window_stride: int = 8,
    conv_dim: int = 64,
    fc_dim: int = 128,
    dropout: float = 0.2,
) -> "keras.Model":
    """Convolutions shrink the 28-pixel height to one row of windows (`window_width` wide, every
    `window_stride` pixels); a final convolution pools groups of windows into `output_length`
    positions, each classified into `num_classes` (the last being padding)."""
    import keras

    check_input(input_shape, output_length, window_width, window_stride)
    height, width = input_shape[0], input_shape[1]
    num_windows = (width - window_width) // window_stride + 1
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(conv_dim // 2, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(conv_dim, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D((2, 1))(x)
    x = keras.layers.Conv2D(
        fc_dim, (height // 2, window_width), strides=(1, window_stride), activation="relu"
    )(x)
    x = keras.layers.Dropout(dropout)(x)
    group = num_windows // output_length
    x = keras.layers.Conv2D(fc_dim, (1, group), strides=(1, group), activation="relu")(x)
    x = keras.layers.Reshape((-1, fc_dim))(x)
    x = keras.layers.Cropping1D((0, x.shape[1] - output_length))(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="line_cnn_all_conv")
