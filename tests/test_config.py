"""The FSDL-style experiment config: the seed's configs parse unchanged, bad ones name their key."""

import json

import pytest

from trainer.config import ConfigError, ExperimentConfig

SEED_CONFIG = '{"dataset": "EmnistDataset", "model": "CharacterModel", "network": "mlp", "train_args": {"batch_size": 256}}'


def test_seed_config_parses_and_fills_defaults():
    config = ExperimentConfig.from_json(SEED_CONFIG)
    assert (config.dataset, config.model, config.network) == (
        "EmnistDataset",
        "CharacterModel",
        "mlp",
    )
    assert config.train_args == {
        "epochs": 3,
        "batch_size": 256,
        "learning_rate": 1e-3,
        "warm_start": "",
        "keep_best": "",
    }
    assert config.dataset_args == {"subsample_fraction": 1.0, "balance": False}
    assert config.network_args == {"layer_size": 128, "dropout": 0.2, "num_layers": 3}


def test_full_fsdl_config_keeps_every_given_value():
    config = ExperimentConfig.from_json(
        json.dumps(
            {
                "dataset": "EmnistDataset",
                "dataset_args": {"subsample_fraction": 0.25},
                "model": "CharacterModel",
                "network": "mlp",
                "network_args": {"num_layers": 8},
                "train_args": {"epochs": 2, "batch_size": 256},
            }
        )
    )
    assert config.dataset_args["subsample_fraction"] == 0.25
    assert config.network_args["num_layers"] == 8
    assert config.network_args["layer_size"] == 128  # untouched defaults survive the merge
    assert config.train_args["epochs"] == 2 and config.train_args["batch_size"] == 256
    assert config.train_args["learning_rate"] == 1e-3


def test_empty_config_gets_all_defaults():
    config = ExperimentConfig.from_json("{}")
    assert (config.dataset, config.model, config.network) == (
        "EmnistDataset",
        "CharacterModel",
        "mlp",
    )


def test_lenet_with_its_own_args():
    config = ExperimentConfig.from_dict({"network": "lenet", "network_args": {"dropout": 0.5}})
    assert config.network == "lenet"
    assert config.network_args == {"dropout": 0.5}


def test_int_is_accepted_where_a_float_is_expected_and_converted():
    config = ExperimentConfig.from_dict({"dataset_args": {"subsample_fraction": 1}})
    assert config.dataset_args["subsample_fraction"] == 1.0
    assert isinstance(config.dataset_args["subsample_fraction"], float)


def test_to_json_round_trips():
    config = ExperimentConfig.from_dict(
        {
            "network": "lenet",
            "network_args": {"dropout": 0.3},
            "train_args": {"epochs": 5},
            "dataset_args": {"subsample_fraction": 0.5, "balance": True},
        }
    )
    text = config.to_json()
    assert json.loads(text)["network_args"] == {"dropout": 0.3}
    assert ExperimentConfig.from_json(text) == config


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"network": "resnet"}, "network"),
        ({"model": "WordModel"}, "model"),
        ({"model": "LineModelCtc", "network": "lenet"}, "network"),
        ({"dataset": "IamLinesDataset"}, "dataset"),
        ({"netwrok": "mlp"}, "netwrok"),
        ({"network_args": {"num_layer": 8}}, "network_args.num_layer"),
        ({"network": "lenet", "network_args": {"num_layers": 8}}, "network_args.num_layers"),
        ({"dataset_args": {"fraction": 0.5}}, "dataset_args.fraction"),
        ({"train_args": {"lr": 0.1}}, "train_args.lr"),
        ({"train_args": {"batch_size": "256"}}, "train_args.batch_size"),
        ({"train_args": {"epochs": True}}, "train_args.epochs"),
        ({"train_args": {"epochs": 2.5}}, "train_args.epochs"),
        ({"train_args": {"epochs": 2.0}}, "train_args.epochs"),
        ({"network_args": {"num_layers": "8"}}, "network_args.num_layers"),
        ({"network_args": {"dropout": False}}, "network_args.dropout"),
        ({"dataset_args": {"balance": 1}}, "dataset_args.balance"),
        ({"dataset_args": {"subsample_fraction": 0}}, "subsample_fraction"),
        ({"dataset_args": {"subsample_fraction": -0.5}}, "subsample_fraction"),
        ({"dataset_args": {"subsample_fraction": 1.5}}, "subsample_fraction"),
        ({"train_args": {"epochs": 0}}, "train_args.epochs"),
        ({"train_args": {"epochs": -1}}, "train_args.epochs"),
        ({"train_args": {"batch_size": 0}}, "train_args.batch_size"),
        ({"train_args": {"learning_rate": -0.1}}, "train_args.learning_rate"),
        ({"train_args": [1, 2]}, "train_args"),
        ({"train_args": {"keep_best": "val_cer"}}, "train_args.keep_best"),  # characters: no CER
        (
            {"model": "LineModelCtc", "train_args": {"keep_best": "val_accuracy"}},
            "train_args.keep_best",
        ),
        (
            {
                "dataset": "PageXmlLinesDataset",
                "model": "LineModelCtc",
                "dataset_args": {"eval_fraction": 1.5},
            },
            "dataset_args.eval_fraction",
        ),
        ({"network_args": "deep"}, "network_args"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ExperimentConfig.from_dict(raw)


def test_bad_config_via_json_names_the_key():
    with pytest.raises(ConfigError, match="network"):
        ExperimentConfig.from_json('{"network": "cnn"}')


@pytest.mark.parametrize("text", ['{"network": "mlp"', "network: mlp", ""])
def test_invalid_json_is_a_config_error(text):
    with pytest.raises(ConfigError, match="not valid JSON"):
        ExperimentConfig.from_json(text)


@pytest.mark.parametrize("text", ["[]", '"mlp"', "3", "null"])
def test_non_object_json_is_a_config_error(text):
    with pytest.raises(ConfigError, match="must be a JSON object"):
        ExperimentConfig.from_json(text)


def test_dataset_model_mismatch_is_rejected():
    with pytest.raises(ConfigError, match=r"dataset: model CharacterModel trains on EmnistDataset"):
        ExperimentConfig.from_dict({"dataset": "EmnistLinesDataset", "model": "CharacterModel"})


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
