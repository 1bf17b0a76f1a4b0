"""The config's optional keys: `experiment_group` (recorded, not part of the model) and `tune`
(a search space validated like the rest, errors naming the key), with configs that set neither
serializing exactly as before so cached runs still hit."""

import json

import pytest

from trainer.config import ConfigError, ExperimentConfig

BASE = {"network": "mlp", "train_args": {"epochs": 1}}
LINES = {"dataset": "EmnistLinesDataset", "model": "LineModelCtc", "network": "line_lstm_ctc"}


def config(**extra) -> ExperimentConfig:
    return ExperimentConfig.from_dict({**BASE, **extra})


def test_configs_without_the_new_keys_serialize_as_before():
    assert set(json.loads(config().to_json())) == {
        "dataset",
        "dataset_args",
        "model",
        "model_args",
        "network",
        "network_args",
        "train_args",
    }
    grouped = config(experiment_group="sweep-1")
    assert grouped.experiment_group == "sweep-1"
    assert json.loads(grouped.to_json())["experiment_group"] == "sweep-1"
    assert ExperimentConfig.from_json(grouped.to_json()) == grouped


def test_a_search_space_is_filled_in_and_its_values_apply():
    tuned = ExperimentConfig.from_dict(
        {
            **LINES,
            "tune": {
                "algorithm": "bayesian",
                "max_trials": 12,
                "space": {
                    "network_args.lstm_dim": [64, 128, 256],
                    "train_args.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
                    "network_args.dropout": {"min": 0.0, "max": 0.5},
                },
            },
        }
    )
    assert tuned.tune["objective"] == "val_cer"  # the metric lines are gated and kept by
    assert tuned.tune["max_trials"] == 12 and len(tuned.tune["space"]) == 3
    trial = tuned.with_values({"network_args.lstm_dim": 64, "train_args.learning_rate": 0.003})
    assert (trial.network_args["lstm_dim"], trial.train_args["learning_rate"]) == (64, 0.003)
    assert (
        config(tune={"space": {"network_args.layer_size": [32]}}).tune["objective"]
        == "val_accuracy"
    )
    augmented = ExperimentConfig.from_dict(
        {
            "dataset": "IamLinesDataset",
            "model": "LineModelCtc",
            "tune": {
                "space": {
                    "dataset_args.augment": [True, False],
                    "dataset_args.augment_strength": {"min": 0.5, "max": 1.5},
                }
            },
        }
    )
    assert augmented.tune["space"]["dataset_args.augment"] == [True, False]


@pytest.mark.parametrize(
    "tune, message",
    [
        (
            {"space": {"network_args.lstm_dim": [64]}},
            "tune.space.network_args.lstm_dim: not a tunable",
        ),
        (
            {"space": {"network_args.layer_size": ["8"]}},
            "tune.space.network_args.layer_size: expected int",
        ),
        (
            {"space": {"network_args.dropout": {"min": 0.1, "max": 1.5}}},
            "tune.space.network_args.dropout: 1.5 is out of range",
        ),
        (
            {"space": {"train_args.learning_rate": {"min": 0.1, "max": 0.01}}},
            "min must be below max",
        ),
        (
            {"space": {"train_args.learning_rate": {"min": 0.0, "max": 0.01, "sampling": "log"}}},
            "log sampling needs min > 0",
        ),
        (
            {"space": {"dataset_args.subsample_fraction": [0.5]}},
            "tune.space.dataset_args.subsample_fraction: not a tunable",
        ),
        ({"space": {"network_args.layer_size": []}}, "non-empty list"),
        ({"space": {}}, "tune.space: expected a non-empty object"),
        (
            {"algorithm": "grid", "space": {"network_args.layer_size": [8]}},
            "tune.algorithm: 'grid'",
        ),
        (
            {"objective": "val_cer", "space": {"network_args.layer_size": [8]}},
            "tune.objective: 'val_cer'",
        ),
        (
            {"max_trials": 0, "space": {"network_args.layer_size": [8]}},
            "tune.max_trials: 0 is out of range",
        ),
        ({"trials": 3}, "tune.trials: unknown argument"),
        ("random", "tune must be a JSON object"),
    ],
)
def test_a_bad_search_space_names_its_key(tune, message):
    with pytest.raises(ConfigError, match=None) as error:
        config(tune=tune)
    assert message in str(error.value)


def test_a_bad_group_names_its_key():
    with pytest.raises(ConfigError, match="experiment_group: expected str"):
        config(experiment_group=["a"])
