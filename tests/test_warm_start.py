"""Warm start: weights saved beside an export load into a new model of the same network when the
charsets agree; otherwise the error names both charsets."""

import numpy as np
import pytest

from data.errors import DatasetError
from data.vocabulary import LINE_CHARACTERS
from trainer.config import ExperimentConfig
from trainer.datasets import DATASETS
from trainer.models import build_model
from trainer.warm_start import WARM_START_FILE, save_weights, warm_start

SYNTHETIC = {
    "dataset": "EmnistLinesDataset",
    "model": "LineModelCtc",
    "dataset_args": {"max_length": 4},
    "network_args": {"lstm_dim": 8, "conv_dim": 8},
}
REAL = {
    "dataset": "PageXmlLinesDataset",
    "model": "LineModelCtc",
    "dataset_args": {"max_length": 4, "height": 28, "max_width": 112},
    "network_args": {"lstm_dim": 8, "conv_dim": 8},
}


def model_of(raw: dict):
    config = ExperimentConfig.from_dict(raw)
    return config, build_model(config, DATASETS[config.dataset].image_shape(config.dataset_args))


def test_synthetic_lines_model_warm_starts_a_real_lines_model(tmp_path):
    source_config, source = model_of(SYNTHETIC)
    save_weights(source, source_config, str(tmp_path / "7"))  # a pushed version directory
    config, model = model_of(REAL)
    assert not all(np.array_equal(a, b) for a, b in zip(source.get_weights(), model.get_weights()))
    summary = warm_start(model, config, str(tmp_path))  # the model directory: newest version
    assert (
        f"{len(model.get_weights())} of {len(model.get_weights())} weight arrays loaded" in summary
    )
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), model.get_weights()))
    assert (tmp_path / "7" / WARM_START_FILE).is_file()


def test_other_height_loads_the_weights_whose_shapes_agree(tmp_path):
    source_config, source = model_of(SYNTHETIC)
    save_weights(source, source_config, str(tmp_path))
    taller = {**REAL, "dataset_args": {**REAL["dataset_args"], "height": 64}}
    config, model = model_of(taller)
    summary = warm_start(model, config, str(tmp_path))
    assert "start fresh" in summary and " 0 of" not in summary


def test_different_charsets_are_refused_naming_both(tmp_path):
    characters = {"dataset": "EmnistDataset", "model": "CharacterModel", "network": "mlp"}
    source_config, source = model_of(characters)
    save_weights(source, source_config, str(tmp_path))
    config, model = model_of(REAL)
    with pytest.raises(DatasetError) as error:
        warm_start(model, config, str(tmp_path))
    message = str(error.value)
    assert repr("".join(LINE_CHARACTERS)) in message and "62 characters" in message
    assert f"({len(LINE_CHARACTERS)})" in message


def test_missing_weights_name_the_path(tmp_path):
    config, model = model_of(REAL)
    with pytest.raises(DatasetError, match=str(tmp_path)):
        warm_start(model, config, str(tmp_path))
