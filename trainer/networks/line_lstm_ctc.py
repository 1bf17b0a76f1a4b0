"""Windows -> shared CNN -> bidirectional LSTM, read with CTC (FSDL's line_lstm_ctc)."""

import keras

from trainer.networks.sliding_windows import SlidingWindows


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
) -> keras.Model:
    """Returns per-window logits [batch, time steps, num_classes]; the last class is the CTC blank.

    CTC needs a time step per character plus one between repeated characters, so the window
    count must be at least 2 * output_length - 1; anything less is refused here.
    """
    width = input_shape[1]
    steps = (width - window_width) // window_stride + 1
    if steps < 2 * output_length - 1:
        raise ValueError(
            f"network_args: window_width {window_width} and window_stride {window_stride} give "
            f"{steps} time steps over a {width}-pixel line; CTC needs at least "
            f"{2 * output_length - 1} to read {output_length} characters"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    windows = SlidingWindows(window_width, window_stride)(inputs)  # [B, T, H, w, 1]
    window_cnn = keras.Sequential(
        [
            keras.layers.Conv2D(conv_dim, 3, activation="relu"),
            keras.layers.Conv2D(conv_dim * 2, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(lstm_dim, activation="relu"),
        ],
        name="window_cnn",
    )
    x = keras.layers.TimeDistributed(window_cnn)(windows)
    x = keras.layers.Dropout(dropout)(x)
    lstm = keras.layers.LSTM(lstm_dim, return_sequences=True)
    x = keras.layers.Bidirectional(lstm)(x) if bidirectional else lstm(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="line_lstm_ctc")
