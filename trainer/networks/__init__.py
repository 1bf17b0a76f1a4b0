"""Networks: each is a function from hyperparameters to an uncompiled Keras 3 model.

Character networks take (input_shape, num_classes); line networks also the line's
`output_length` (the dataset's max_length).

`NETWORKS` maps the config's `network` name to its builder. The builders' keyword arguments, with
their defaults and types, are the allowed `network_args`: config validation reads them from the
signatures, so adding a network here is all it takes to make it configurable.
"""

from trainer.networks.lenet import lenet
from trainer.networks.line_attention import line_attention
from trainer.networks.line_cnn_all_conv import line_cnn_all_conv
from trainer.networks.line_lstm_ctc import line_lstm_ctc
from trainer.networks.mlp import mlp

NETWORKS = {
    "mlp": mlp,
    "lenet": lenet,
    "line_cnn_all_conv": line_cnn_all_conv,
    "line_lstm_ctc": line_lstm_ctc,
    "line_attention": line_attention,
}
