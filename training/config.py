"""The FSDL-style JSON experiment config, validated before any pipeline component runs.

Example: {"dataset": "EmnistDataset", "dataset_args": {"subsample_fraction": 0.25},
"model": "CharacterModel", "network": "mlp", "network_args": {"num_layers": 8},
"train_args": {"epochs": 2, "batch_size": 256}}; line models also take "model_args".

Every error names the offending key, so a typo never reaches the Trainer as a silent default.
"""

import dataclasses
import inspect
import json
import math
from typing import Any

from data.vocabulary import NUM_LINE_CLASSES
from trainer.decoding import CTC_STRATEGIES
from trainer.networks import NETWORKS
from transform.preprocessing import IMAGE_SIZE


class ConfigError(ValueError):
    """An experiment config that cannot be run; the message names the key."""


# Allowed arguments of each section, with their defaults (whose types are the allowed types).
DATASET_ARGS = {
    "EmnistDataset": {"subsample_fraction": 1.0, "balance": False},
    "EmnistLinesDataset": {
        "max_length": 34,
        "min_overlap": 0.0,
        "max_overlap": 0.33,
        "num_train": 10000,
        "num_eval": 1000,
        "resample_every_epoch": False,
    },
}
TRAIN_ARGS = {"epochs": 3, "batch_size": 128, "learning_rate": 1e-3}
# How a model reads its network's output; only CTC has a choice (greedy or beam search).
MODEL_ARGS = {"LineModelCtc": {"decoding": "greedy", "beam_width": 10}}
# Each model: the dataset it trains on and the networks it can drive (the first is the default).
MODELS = {
    "CharacterModel": ("EmnistDataset", ("mlp", "lenet")),
    "LineModel": ("EmnistLinesDataset", ("line_cnn_all_conv",)),
    "LineModelCtc": ("EmnistLinesDataset", ("line_lstm_ctc",)),
    "LineModelAttention": ("EmnistLinesDataset", ("line_attention",)),
}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    dataset: str
    model: str
    network: str
    dataset_args: dict
    network_args: dict
    train_args: dict
    model_args: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> "ExperimentConfig":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"experiment config is not valid JSON: {e}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Any) -> "ExperimentConfig":
        if not isinstance(raw, dict):
            raise ConfigError(f"experiment config must be a JSON object, got {type(raw).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - fields)
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown}; allowed: {sorted(fields)}")
        model = _choice(raw, "model", MODELS, "CharacterModel")
        model_dataset, model_networks = MODELS[model]
        dataset = _choice(raw, "dataset", DATASET_ARGS, model_dataset)
        if dataset != model_dataset:
            raise ConfigError(f"dataset: model {model} trains on {model_dataset}, not {dataset}")
        network = _choice(raw, "network", NETWORKS, model_networks[0])
        if network not in model_networks:
            raise ConfigError(f"network: model {model} drives {list(model_networks)}, not {network}")
        dataset_args = _args(raw, "dataset_args", DATASET_ARGS[dataset])
        if dataset_args.get("subsample_fraction", 1) > 1:
            raise ConfigError("dataset_args.subsample_fraction must be in (0, 1]")
        if dataset_args.get("min_overlap", 0) > dataset_args.get("max_overlap", 0):
            raise ConfigError("dataset_args.min_overlap must not exceed max_overlap")
        train_args = _args(raw, "train_args", TRAIN_ARGS)
        model_args = _args(raw, "model_args", MODEL_ARGS.get(model, {}))
        if model_args.get("decoding", "greedy") not in CTC_STRATEGIES:
            raise ConfigError(f"model_args.decoding must be one of {list(CTC_STRATEGIES)}")
        network_args = _args(raw, "network_args", network_defaults(network))
        if dataset == "EmnistLinesDataset":
            _check_line_network(network, network_args, dataset_args["max_length"])
        return cls(
            dataset=dataset,
            model=model,
            network=network,
            dataset_args=dataset_args,
            network_args=network_args,
            train_args=train_args,
            model_args=model_args,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def network_defaults(name: str) -> dict:
    """The tunable keyword arguments of a network builder and their defaults."""
    params = inspect.signature(NETWORKS[name]).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _check_line_network(network: str, network_args: dict, max_length: int) -> None:
    """Builds the network once, so geometry errors (too few windows for the line) surface now."""
    shape = (IMAGE_SIZE, max_length * IMAGE_SIZE, 1)
    try:
        NETWORKS[network](shape, NUM_LINE_CLASSES, max_length, **network_args)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _choice(raw: dict, key: str, allowed: dict, default: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{key}: unknown value {value!r}; choose one of {sorted(allowed)}")
    return value


def _args(raw: dict, key: str, defaults: dict) -> dict:
    """Merges `raw[key]` over `defaults`, rejecting unknown names and values of the wrong type."""
    given = raw.get(key)
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ConfigError(f"{key} must be a JSON object, got {type(given).__name__}")
    merged = dict(defaults)
    for name, value in given.items():
        if name not in defaults:
            raise ConfigError(f"{key}.{name}: unknown argument; allowed: {sorted(defaults)}")
        expected = type(defaults[name])
        accepted = (int, float) if expected is float else (expected,)
        if isinstance(value, bool) != (expected is bool) or not isinstance(value, accepted):
            raise ConfigError(
                f"{key}.{name}: expected {expected.__name__}, got {type(value).__name__} ({value!r})"
            )
        if expected in (int, float) and not _in_bounds(name, value):
            raise ConfigError(f"{key}.{name}: {value!r} is out of range ({_BOUNDS_TEXT})")
        merged[name] = expected(value)
    return merged


FRACTIONS = ("dropout", "min_overlap", "max_overlap")
_BOUNDS_TEXT = f"{', '.join(FRACTIONS)} in [0, 1); other numbers finite, whole ones >= 1, others > 0"


def _in_bounds(name: str, value) -> bool:
    if not math.isfinite(value):
        return False
    if name in FRACTIONS:
        return 0 <= value < 1
    return value >= 1 if isinstance(value, int) else value > 0
