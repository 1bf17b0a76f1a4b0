"""The Tuner: a keras-tuner search over a config's "tune" space (see trainer.config.check_tune),
run by TFX's Tuner component between Transform and the Trainer, which then trains with its
`best_hyperparameters` (trainer.run.tuned).

Each trial is the config with the trial's values, trained as the Trainer trains it
(trainer.run.training_setup), so a trial can vary the network, the training arguments (batch
size and epochs too) and the Trainer's augmentation. TFX's executor writes the best values and
the completed trials' scores; ours also writes `trials.json` beside them (every trial's values,
objective, epochs and time), which `training.runs show` prints.

Algorithms are keras-tuner's oracles: random, bayesian (both run `max_trials` trials) and
hyperband (`train_args.epochs` as max_epochs, factor 3, at most `max_trials` trials; a trial
hyperband promotes is trained again from scratch for its epochs, not resumed).
"""

import json
import os
import time
from typing import TYPE_CHECKING

from tfx.components.tuner import executor as tuner_executor
from tfx.components.tuner.component import Tuner, TunerFnResult
from tfx.dsl.components.base import executor_spec

if TYPE_CHECKING:
    import keras_tuner

TUNER_FN = "trainer.tuner.tuner_fn"
TRIALS_FILE = "trials.json"
TUNER_ID = "Tuner"


def search_space(config) -> "keras_tuner.HyperParameters":
    """The config's space for keras-tuner: lists are choices, ranges Int or Float as the
    argument's default is (a dropout range {"min": 0, "max": 1} is a Float)."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, values in config.tune["space"].items():
        section, key = name.split(".", 1)
        if isinstance(values, list):
            hp.Choice(name, values)
            continue
        whole = type(getattr(config, section)[key]) is int
        (hp.Int if whole else hp.Float)(
            name, values["min"], values["max"], sampling=values.get("sampling", "linear")
        )
    return hp


def _oracle(config):
    import keras_tuner

    from trainer.best_epoch import higher_is_better

    tune, epochs = config.tune, config.train_args["epochs"]
    direction = "max" if higher_is_better(tune["objective"]) else "min"
    common = {
        "objective": keras_tuner.Objective(tune["objective"], direction),
        "hyperparameters": search_space(config),
        "seed": 0,
    }
    if tune["algorithm"] == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=epochs, **common)
        oracle.max_trials = tune["max_trials"]  # it takes none, but stops at one; TFX reads it
        return oracle
    oracle = {
        "random": keras_tuner.oracles.RandomSearchOracle,
        "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
    }[tune["algorithm"]]
    return oracle(max_trials=tune["max_trials"], **common)


def tuner_fn(fn_args) -> TunerFnResult:
    import keras_tuner
    import tensorflow_transform as tft

    from trainer.config import ExperimentConfig
    from trainer.run import training_setup

    config = ExperimentConfig.from_json(fn_args.custom_config["experiment"])
    tune = config.tune
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    class Search(keras_tuner.engine.base_tuner.BaseTuner):
        """Trains one trial's config; remembers its epochs and wall time."""

        records = {}

        def run_trial(self, trial, **kwargs):
            values = trial.hyperparameters.values
            trial_config = config.with_values(
                {k: v for k, v in values.items() if k in tune["space"]}
            )
            model, train, evaluation, callbacks = training_setup(
                fn_args, trial_config, transform_output, val_cer=tune["objective"] == "val_cer"
            )
            started = time.perf_counter()
            history = model.fit(
                train,
                validation_data=evaluation,
                callbacks=callbacks,
                verbose=2,
                epochs=values.get("tuner/epochs", trial_config.train_args["epochs"]),
            )
            self.records[trial.trial_id] = {
                "epochs": len(history.epoch),
                "seconds": time.perf_counter() - started,
            }
            return history

    search = Search(
        _oracle(config), directory=fn_args.working_dir, project_name="search", overwrite=True
    )
    return TunerFnResult(tuner=search, fit_kwargs={})


class TrialsExecutor(tuner_executor.Executor):
    """TFX's Tuner executor, which also writes every trial to `tuner_results/trials.json`."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        search = tuner_executor.search(input_dict, exec_properties, self._get_tmp_dir())
        tuner_executor.write_best_hyperparameters(search, output_dict)
        trials = [
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "objective": trial.score,
                "hyperparameters": {
                    k: v
                    for k, v in trial.hyperparameters.values.items()
                    if not k.startswith("tuner/")
                },
                **search.records.get(trial.trial_id, {"epochs": 0, "seconds": 0.0}),
            }
            for trial in search.oracle.trials.values()
        ]
        folder = output_dict["tuner_results"][0].uri
        with open(os.path.join(folder, TRIALS_FILE), "w") as f:
            json.dump(trials, f, indent=2)


class TrackedTuner(Tuner):
    """tfx.components.Tuner with TrialsExecutor."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrialsExecutor)


def tuner_component(examples, transform_graph, schema, custom_config: dict) -> TrackedTuner:
    return TrackedTuner(
        tuner_fn=TUNER_FN,
        examples=examples,
        transform_graph=transform_graph,
        schema=schema,
        custom_config=custom_config,
    ).with_id(TUNER_ID)
