"""The FSDL-style JSON experiment config, validated before any pipeline component runs.

Example: {"dataset": "EmnistDataset", "dataset_args": {"subsample_fraction": 0.25},
"model": "CharacterModel", "network": "mlp", "network_args": {"num_layers": 8},
"train_args": {"epochs": 2, "batch_size": 256}}; line models also take "model_args".

Every error names the offending key, so a typo never reaches the Trainer as a silent default.

Two optional top-level keys do not change what one model is: "experiment_group" (a name that
groups runs for tracking; recorded with the run, not given to the Trainer, so a group's run
reuses the cache of the same config run alone) and "tune" (a search space for the Tuner, see
`check_tune`). `to_json` leaves both out when unset, so configs without them serialize exactly as
before and cached pipeline runs still hit.
"""

import dataclasses
import json
import math
from typing import Any

from trainer.datasets import DATASETS
from trainer.models import MODEL_KINDS
from trainer.networks import NETWORKS, check_input, network_defaults


class ConfigError(ValueError):
    """An experiment config that cannot be run; the message names the key."""


TRAIN_ARGS = {
    "epochs": 3,
    "batch_size": 128,
    "learning_rate": 1e-3,
    "warm_start": "",
    "keep_best": "",
}
DEFAULT_MODEL = "CharacterModel"
# The dataset a model kind trains on when the config names none.
DEFAULT_DATASETS = {
    "characters": "EmnistDataset",
    "lines": "EmnistLinesDataset",
    "pages": "EmnistPagesDataset",
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
    experiment_group: str = ""
    tune: dict = dataclasses.field(default_factory=dict)

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
        kind = MODEL_KINDS[_choice(raw, "model", MODEL_KINDS, DEFAULT_MODEL)]
        dataset = DATASETS[_choice(raw, "dataset", DATASETS, DEFAULT_DATASETS[kind.reads])]
        if dataset.provides != kind.reads:
            compatible = sorted(d.name for d in DATASETS.values() if d.provides == kind.reads)
            raise ConfigError(
                f"dataset: model {kind.name} trains on {' or '.join(compatible)}, not {dataset.name}"
            )
        network = _choice(raw, "network", NETWORKS, kind.networks[0])
        if network not in kind.networks:
            raise ConfigError(
                f"network: model {kind.name} drives {list(kind.networks)}, not {network}"
            )
        dataset_args = _args(raw, "dataset_args", dataset.args)
        train_args = _args(raw, "train_args", TRAIN_ARGS)
        model_args = _args(raw, "model_args", kind.model_args)
        network_args = _args(raw, "network_args", network_defaults(network))
        group = raw.get("experiment_group", "")
        if not isinstance(group, str):
            raise ConfigError(
                f"experiment_group: expected str, got {type(group).__name__} ({group!r})"
            )
        config = cls(
            experiment_group=group,
            dataset=dataset.name,
            model=kind.name,
            network=network,
            dataset_args=dataset_args,
            network_args=network_args,
            train_args=train_args,
            model_args=model_args,
        )
        try:
            _check_keep_best(train_args["keep_best"], dataset.best_metric)
            dataset.validate(dataset_args)
            kind.validate(config)
            shape = dataset.image_shape(dataset_args)
            check_input(network, shape, kind.output_length(config), network_args)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if "tune" in raw:
            config = dataclasses.replace(
                config, tune=check_tune(config, raw["tune"], dataset.best_metric)
            )
        return config

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        for optional in ("experiment_group", "tune"):
            if not fields[optional]:
                del fields[optional]
        return json.dumps(fields, sort_keys=True)

    def with_values(self, values: dict) -> "ExperimentConfig":
        """This config with `{"network_args.lstm_dim": 64, ...}` set, validated again (the Tuner's
        trials and the Trainer's best hyperparameters)."""
        raw = json.loads(self.to_json())
        for key, value in values.items():
            section, name = key.split(".", 1)
            raw[section][name] = value
        return ExperimentConfig.from_dict(raw)


TUNE = {"algorithm": "random", "max_trials": 10, "objective": "", "space": {}}
ALGORITHMS = ("random", "bayesian", "hyperband")
OBJECTIVES = {
    "val_cer": "lines",
    "val_accuracy": "characters",
    "val_mean_iou": "pages",
    "val_loss": None,
}
# What a search space may vary: the network and training, and the Trainer's augmentation (the
# other dataset_args shape the examples Transform already wrote, so a trial cannot change them).
TUNABLE = ("network_args", "train_args", "dataset_args.augment")


def check_tune(config: "ExperimentConfig", raw, best_metric: str) -> dict:
    """The "tune" block with defaults filled in (objective: the metric the best epoch is kept
    by); every value of the space is tried on `config`, so a bad one is named before any run."""
    tune = _args({"tune": raw}, "tune", TUNE)
    tune["objective"] = tune["objective"] or best_metric
    if tune["algorithm"] not in ALGORITHMS:
        raise ConfigError(f"tune.algorithm: {tune['algorithm']!r} is not one of {list(ALGORITHMS)}")
    reads = MODEL_KINDS[config.model].reads
    if OBJECTIVES.get(tune["objective"], reads) != reads:
        allowed = [name for name, kind in OBJECTIVES.items() if kind in (None, reads)]
        raise ConfigError(
            f"tune.objective: {tune['objective']!r} is not one of {allowed} for {reads}"
        )
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError('tune.space: expected a non-empty object of "section.name": values')
    tune["space"] = {key: _check_dimension(config, key, values) for key, values in space.items()}
    return tune


def _check_dimension(config: "ExperimentConfig", key: str, values):
    """A list of choices, or {"min", "max", "sampling": "linear"|"log"} for a number."""
    where = f"tune.space.{key}"
    section, _, name = key.partition(".")
    if not key.startswith(TUNABLE) or name not in getattr(config, section, {}):
        raise ConfigError(
            f"{where}: not a tunable argument of this config "
            f"(network_args, train_args or dataset_args.augment* names it takes)"
        )
    default = getattr(config, section)[name]
    if isinstance(values, dict):
        unknown = sorted(set(values) - {"min", "max", "sampling"})
        if unknown or not {"min", "max"} <= set(values) or isinstance(default, (bool, str)):
            raise ConfigError(f'{where}: a range is {{"min", "max", "sampling"}} of a number')
        if values.get("sampling", "linear") not in ("linear", "log"):
            raise ConfigError(f"{where}.sampling: 'linear' or 'log', not {values['sampling']!r}")
        if not values["min"] < values["max"]:
            raise ConfigError(f"{where}: min must be below max")
        if values.get("sampling") == "log" and not values["min"] > 0:
            raise ConfigError(f"{where}: log sampling needs min > 0")
        candidates = [values["min"], values["max"]]
    elif isinstance(values, list) and values:
        candidates = values
    else:
        raise ConfigError(f"{where}: expected a non-empty list of choices or a min/max range")
    for value in candidates:
        try:
            config.with_values({key: value})
        except ConfigError as e:
            raise ConfigError(f"tune.space.{e}") from None
    return values


def _check_keep_best(value: str, best_metric: str) -> None:
    allowed = ("", best_metric, "val_loss", "last")
    if value not in allowed:
        raise ValueError(f"train_args.keep_best must be one of {list(allowed)} ('': {best_metric})")


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
_BOUNDS_TEXT = (
    f"{', '.join(FRACTIONS)} in [0, 1); other numbers finite, whole ones >= 1, others > 0"
)


def _in_bounds(name: str, value) -> bool:
    if not math.isfinite(value):
        return False
    if name in FRACTIONS:
        return 0 <= value < 1
    return value >= 1 if isinstance(value, int) else value > 0
