"""CNN -> bidirectional LSTMs, read with CTC: a CRNN sized for real handwriting lines (after the
keras.io handwriting-recognition example and PyLaia's CRNN).

Real lines are taller (64 pixels by default) and longer than EMNIST lines, with strokes that
join, so instead of line_lstm_ctc's fixed windows a deeper CNN (3x3 convolutions with batch
norm) looks at every column: each block halves the height, the first few also the width, until
each remaining column (`width_downsampling` input pixels) is one time step. The remaining rows
are flattened into the step's features, projected, and read by stacked bidirectional LSTMs.
"""

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a network is built, so the config reads
    import keras  # the builders' signatures without loading TensorFlow

MAX_FILTER_DOUBLINGS = 3  # filters double per conv block up to 8x conv_filters


def time_steps(input_shape: tuple, width_downsampling: int) -> int:
    return math.ceil(input_shape[1] / width_downsampling)  # "same" pooling keeps partial columns


def check_input(
    input_shape: tuple,
    output_length: int,
    num_conv_blocks: int = 4,
    width_downsampling: int = 4,
    **_,
) -> None:
    """The width is halved in the first log2(width_downsampling) conv blocks, so it must be a
    power of two with no more halvings than blocks; and CTC needs a time step per character plus
    one between repeated characters: at least 2 * output_length - 1 steps (plain arithmetic:
    the config checks it before TensorFlow is loaded)."""
    halvings = math.log2(width_downsampling) if width_downsampling >= 1 else -1
    if halvings != int(halvings) or not 0 <= halvings <= num_conv_blocks:
        raise ValueError(
            f"network_args: width_downsampling ({width_downsampling}) must be a power of two "
            f"from 1 to 2**num_conv_blocks ({2**num_conv_blocks}): each conv block halves the "
            "width at most once"
        )
    steps = time_steps(input_shape, width_downsampling)
    if steps < 2 * output_length - 1:
        raise ValueError(
            f"network_args: width_downsampling {width_downsampling} gives {steps} time steps "
            f"over a {input_shape[1]}-pixel line; CTC needs at least {2 * output_length - 1} to "
            f"read {output_length} characters"
        )


def line_crnn(
    input_shape: tuple,
    num_classes: int,
    output_length: int,
    conv_filters: int = 32,
    num_conv_blocks: int = 4,
    width_downsampling: int = 4,
    lstm_dim: int = 128,
    num_lstm_layers: int = 2,
    dropout: float = 0.25,
) -> "keras.Model":
    """Returns per-step logits [batch, ceil(width / width_downsampling), num_classes]; the last
    class is the CTC blank. Any height works: pooling rounds odd sizes up."""
    import keras

    check_input(input_shape, output_length, num_conv_blocks, width_downsampling)
    width_halvings = int(math.log2(width_downsampling))
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block in range(num_conv_blocks):
        filters = conv_filters * 2 ** min(block, MAX_FILTER_DOUBLINGS)
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # PyTorch's (PyLaia's) momentum rather than Keras' 0.99: the moving statistics keep up
        # with the weights within tens of steps, so short runs (a small collection, a warm
        # start) are read as well in inference mode as in training.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D((2, 2 if block < width_halvings else 1), padding="same")(x)
    # [B, rows, steps, filters] -> one feature vector per step (column).
    x = keras.layers.Permute((2, 1, 3))(x)
    x = keras.layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)
    x = keras.layers.Dense(lstm_dim, activation="relu")(x)
    for _ in range(num_lstm_layers):
        x = keras.layers.Dropout(dropout)(x)
        x = keras.layers.Bidirectional(keras.layers.LSTM(lstm_dim, return_sequences=True))(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="line_crnn")
