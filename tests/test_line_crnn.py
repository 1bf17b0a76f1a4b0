"""The CRNN line network (trainer/networks/line_crnn.py): one step per `width_downsampling`
columns for any line size, geometry refused before TensorFlow would fail, hyperparameters that
change the model, and that it learns to read a tiny set of drawn lines with CTC."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from data.vocabulary import NUM_LINE_CLASSES
from trainer.decoding import ctc_decode, ctc_loss, indices_to_text
from trainer.networks import NETWORKS, check_input, network_defaults
from trainer.networks.line_crnn import line_crnn
from transform.line_synthesis import GlyphBank, synthesize_lines

SMALL = {"conv_filters": 4, "lstm_dim": 8}  # enough to check shapes, fast to build


def layer_count(model: keras.Model, layer_type) -> int:
    return sum(isinstance(layer, layer_type) for layer in model.layers)


@pytest.mark.parametrize(
    "input_shape,width_downsampling,steps",
    [
        ((64, 1024, 1), 4, 256),
        ((64, 1024, 1), 8, 128),
        ((48, 640, 1), 2, 320),
        ((28, 112, 1), 4, 28),
        ((30, 100, 1), 8, 13),  # neither size divides: pooling rounds up
    ],
)
def test_one_step_per_width_downsampling_columns(input_shape, width_downsampling, steps):
    model = line_crnn(
        input_shape, NUM_LINE_CLASSES, 4, width_downsampling=width_downsampling, **SMALL
    )
    assert tuple(model.output_shape) == (None, steps, NUM_LINE_CLASSES)
    images = tf.random.stateless_uniform((2, *input_shape), [0, 0])
    assert model(images, training=False).shape == (2, steps, NUM_LINE_CLASSES)


def test_registered_with_plain_typed_defaults():
    assert NETWORKS["line_crnn"] is line_crnn
    defaults = network_defaults("line_crnn")
    assert defaults == {
        "conv_filters": 32,
        "num_conv_blocks": 4,
        "width_downsampling": 4,
        "lstm_dim": 128,
        "num_lstm_layers": 2,
        "dropout": 0.25,
    }


@pytest.mark.parametrize(
    "network_args,message",
    [
        (
            {"width_downsampling": 8},
            r"network_args: width_downsampling 8 gives 14 time steps over a "
            r"112-pixel line; CTC needs at least 15 to read 8 characters",
        ),
        (
            {"width_downsampling": 3},
            r"network_args: width_downsampling \(3\) must be a power of two",
        ),
        ({"width_downsampling": 0}, r"must be a power of two"),
        ({"width_downsampling": 8, "num_conv_blocks": 2}, r"from 1 to 2\*\*num_conv_blocks \(4\)"),
    ],
)
def test_geometry_that_cannot_read_the_line_is_refused(network_args, message):
    with pytest.raises(ValueError, match=message):
        check_input("line_crnn", (28, 112, 1), 8, network_args)
    with pytest.raises(ValueError, match=message):  # and the builder refuses it too
        line_crnn((28, 112, 1), NUM_LINE_CLASSES, 8, **network_args)


def test_the_tightest_geometry_is_accepted():
    check_input("line_crnn", (28, 112, 1), 8, {"width_downsampling": 4})  # 28 steps, 15 needed
    check_input("line_crnn", (64, 116, 1), 8, {"width_downsampling": 8})  # ceil(116 / 8) = 15


def test_hyperparameters_change_the_model():
    def build(**args):
        return line_crnn((64, 256, 1), NUM_LINE_CLASSES, 8, **{**SMALL, **args})

    base = build()
    assert layer_count(base, keras.layers.Bidirectional) == 2
    assert layer_count(build(num_lstm_layers=3), keras.layers.Bidirectional) == 3
    assert layer_count(base, keras.layers.Conv2D) == 4
    assert layer_count(build(num_conv_blocks=6), keras.layers.Conv2D) == 6
    assert build(conv_filters=8).count_params() > base.count_params()
    assert build(lstm_dim=16).count_params() > base.count_params()
    dropouts = [
        layer.rate for layer in build(dropout=0.4).layers if isinstance(layer, keras.layers.Dropout)
    ]
    assert dropouts and set(dropouts) == {0.4}


def test_filters_double_per_block_up_to_eight_times():
    model = line_crnn(
        (64, 256, 1), NUM_LINE_CLASSES, 8, conv_filters=4, num_conv_blocks=5, lstm_dim=8
    )
    filters = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert filters == [4, 8, 16, 32, 32]


def test_learns_to_read_a_tiny_set():
    """8 lines of 3-4 characters from the embedded sample's glyphs, fitted as one batch; the
    greedy CTC reading in inference mode (batch norm's moving statistics) gives their texts."""
    images, labels, _ = read_split(SAMPLE_DIR, "train")
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("0123abcd"), rng.integers(3, 5))) for _ in range(8)]
    lines, line_labels = synthesize_lines(
        tf.constant(texts), tf.range(8, dtype=tf.int64), GlyphBank(images, labels), 4
    )
    keras.utils.set_random_seed(0)
    model = line_crnn(
        (28, 112, 1),
        NUM_LINE_CLASSES,
        4,
        conv_filters=16,
        num_conv_blocks=3,
        lstm_dim=64,
        dropout=0.0,
    )
    model.compile(keras.optimizers.Adam(3e-3), loss=ctc_loss)
    losses = model.fit(lines[..., None], line_labels, epochs=400, batch_size=8, verbose=0).history[
        "loss"
    ]
    assert losses[-1] < 0.1 * losses[0], losses[::50]
    decoded, _ = ctc_decode(keras.ops.softmax(model(lines[..., None], training=False)))
    read = [text.decode() for text in indices_to_text(decoded).numpy()]
    assert sum(r == t for r, t in zip(read, texts)) >= 7, list(zip(texts, read))
