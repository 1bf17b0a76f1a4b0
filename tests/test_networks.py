"""The network registry and build_classifier: shapes, hyperparameters, and that each can learn."""

import keras
import numpy as np
import pytest

from trainer.config import ExperimentConfig
from trainer.datasets import DATASETS
from trainer.models import build_model
from trainer.networks import NETWORKS

CHARACTER_NETWORKS = ["lenet", "mlp"]  # line networks: tests/test_line_networks.py

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 62


def separable_images(n: int, num_classes: int, seed: int = 0):
    """Random images whose class is a bright 4x4 block at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    images = rng.uniform(0, 0.3, (n, *INPUT_SHAPE)).astype(np.float32)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 6)
        images[i, 4 * row : 4 * row + 4, 4 * col + 2 : 4 * col + 6, 0] = 1.0
    return images, labels


def test_registry_names():
    assert set(CHARACTER_NETWORKS) <= set(NETWORKS)


@pytest.mark.parametrize("name", CHARACTER_NETWORKS)
def test_network_outputs_a_distribution_over_classes(name):
    keras.utils.set_random_seed(0)
    model = NETWORKS[name](INPUT_SHAPE, NUM_CLASSES)
    assert isinstance(model, keras.Model)
    assert tuple(model.input_shape) == (None, *INPUT_SHAPE)
    assert tuple(model.output_shape) == (None, NUM_CLASSES)
    images = np.random.default_rng(1).uniform(0, 1, (4, *INPUT_SHAPE)).astype(np.float32)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (4, NUM_CLASSES)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_mlp_num_layers_sets_the_number_of_dense_layers():
    assert len(dense_layers(NETWORKS["mlp"](INPUT_SHAPE, NUM_CLASSES, num_layers=1))) == 2
    assert len(dense_layers(NETWORKS["mlp"](INPUT_SHAPE, NUM_CLASSES, num_layers=8))) == 9


def test_mlp_layer_size_and_dropout_are_used():
    model = NETWORKS["mlp"](INPUT_SHAPE, NUM_CLASSES, layer_size=32, dropout=0.4)
    assert [layer.units for layer in dense_layers(model)[:-1]] == [32, 32, 32]
    assert {layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)} == {
        0.4
    }


def test_lenet_dropout_is_used():
    model = NETWORKS["lenet"](INPUT_SHAPE, NUM_CLASSES, dropout=0.35)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates and set(rates) == {0.35}


def test_build_classifier_uses_config_and_compiles():
    config = ExperimentConfig.from_dict(
        {
            "network": "mlp",
            "network_args": {"num_layers": 2, "layer_size": 16},
            "train_args": {"learning_rate": 0.01},
        }
    )
    model = build_model(config, INPUT_SHAPE)
    assert model.name == "mlp"
    assert (
        tuple(model.output_shape) == (None, len(DATASETS["EmnistDataset"].characters)) == (None, 62)
    )
    assert len(dense_layers(model)) == 3
    assert model.optimizer is not None
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)


@pytest.mark.parametrize("name", CHARACTER_NETWORKS)
def test_network_learns_a_tiny_separable_set(name):
    keras.utils.set_random_seed(0)
    images, labels = separable_images(320, num_classes=30)
    config = ExperimentConfig.from_dict({"network": name, "train_args": {"learning_rate": 3e-3}})
    model = build_model(config, INPUT_SHAPE)
    before = model.evaluate(images, labels, verbose=0, return_dict=True)
    history = model.fit(images, labels, epochs=6, batch_size=32, shuffle=True, verbose=0)
    after = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert before["loss"] > 3.0  # about ln(62) for an untrained softmax
    assert after["loss"] < 0.5 * before["loss"]
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert after["accuracy"] > 0.8
