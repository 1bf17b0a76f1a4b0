"""Windows -> shared CNN -> bidirectional LSTM, read with CTC (FSDL's line_lstm_ctc).

The CNN that FSDL applies to each window separately is applied here as convolutions over the
whole line, the last one `window_width` wide with stride `window_stride`: the same function of
each window, computed once for the pixels that neighbouring windows share.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a network is built, so the config reads
    import keras  # the builders' signatures without loading TensorFlow


def time_steps(input_shape: tuple, window_width: int, window_stride: int) -> int:
    return (input_shape[1] - window_width) // window_stride + 1


def check_input(
    input_shape: tuple, output_length: int, window_width: int = 28, window_stride: int = 14, **_
) -> None:
    """CTC needs a time step per character plus one between repeated characters, so the window
    count must be at least 2 * output_length - 1; anything less is refused (plain arithmetic:
    the config checks it before TensorFlow is loaded)."""
    if window_width % 2 or window_stride % 2:
        raise ValueError(
            f"network_args: window_width ({window_width}) and window_stride ({window_stride}) "
            "must be even (the CNN halves the width once before windowing)"
        )
    steps = time_steps(input_shape, window_width, window_stride)
    if steps < 2 * output_length - 1:
        raise ValueError(
            f"network_args: window_width {window_width} and window_stride {window_stride} give "
            f"{steps} time steps over a {input_shape[1]}-pixel line; CTC needs at least "
            f"{2 * output_length - 1} to read {output_length} characters"
        )


def line_lstm_ctc(
    input_shape: tuple,
    num_classes: int,
    output_length: int,
    window_width: int = 28,
    window_stride: int = 14,
    conv_dim: int = 32,
    lstm_dim: int = 128,
    bidirectional: bool = True,
    dropout: float = 0.2,
) -> "keras.Model":
    """Returns per-window logits [batch, time steps, num_classes]; the last class is the CTC blank."""
    import keras

    check_input(input_shape, output_length, window_width, window_stride)
    height = input_shape[0]
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(conv_dim // 2, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(conv_dim, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(conv_dim * 2, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D((2, 1))(x)
    # One column of features per window: the windows' CNN output.
    x = keras.layers.Conv2D(
        lstm_dim,
        (height // 4, window_width // 2),
        strides=(1, window_stride // 2),
        activation="relu",
    )(x)
    x = keras.layers.Reshape((time_steps(input_shape, window_width, window_stride), lstm_dim))(x)
    x = keras.layers.Dropout(dropout)(x)
    lstm = keras.layers.LSTM(lstm_dim, return_sequences=True)
    x = keras.layers.Bidirectional(lstm)(x) if bidirectional else lstm(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="line_lstm_ctc")
