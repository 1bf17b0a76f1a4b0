"""Networks: each is a function from hyperparameters to an uncompiled Keras 3 model.

`NETWORKS` maps the config's `network` name to its builder. The builders' keyword arguments, with
their defaults and types, are the allowed `network_args`: config validation reads them from the
signatures, so adding a network here is all it takes to make it configurable.
"""

from trainer.networks.lenet import lenet
from trainer.networks.mlp import mlp

NETWORKS = {"mlp": mlp, "lenet": lenet}
