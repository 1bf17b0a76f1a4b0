"""Networks: each is a function from hyperparameters to an uncompiled Keras 3 model.

Character networks take (input_shape, num_classes); line networks also the line's
`output_length` (the number of characters a line holds at most).

`NETWORKS` maps the config's `network` name to its builder. The builders' keyword arguments, with
their defaults and types, are the allowed `network_args`: config validation reads them from the
signatures, so adding a network here is all it takes to make it configurable. Builders import
Keras when called, and line networks whose geometry can be wrong say so in a `check_input` of
plain arithmetic, so a config is validated without loading TensorFlow.
"""

import inspect
from collections.abc import Callable
from typing import Any

from trainer.networks import (
    lenet,
    line_attention,
    line_cnn_all_conv,
    line_crnn,
    line_detector_fcn,
    line_lstm_ctc,
    mlp,
)

NETWORKS: dict[str, Callable[..., Any]] = {
    "mlp": mlp.mlp,
    "lenet": lenet.lenet,
    "line_cnn_all_conv": line_cnn_all_conv.line_cnn_all_conv,
    "line_lstm_ctc": line_lstm_ctc.line_lstm_ctc,
    "line_attention": line_attention.line_attention,
    "line_crnn": line_crnn.line_crnn,
    "line_detector_fcn": line_detector_fcn.line_detector_fcn,
}
INPUT_CHECKS: dict[str, Callable[..., None]] = {
    "line_cnn_all_conv": line_cnn_all_conv.check_input,
    "line_lstm_ctc": line_lstm_ctc.check_input,
    "line_crnn": line_crnn.check_input,
    "line_detector_fcn": line_detector_fcn.check_input,
}


def network_defaults(name: str) -> dict:
    """The tunable keyword arguments of a network builder and their defaults."""
    params = inspect.signature(NETWORKS[name]).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def check_input(name: str, input_shape: tuple, output_length: int, network_args: dict) -> None:
    """Raises ValueError when the network cannot read `output_length` characters from images of
    `input_shape` with these arguments."""
    if name in INPUT_CHECKS:
        INPUT_CHECKS[name](input_shape, output_length, **network_args)
