"""The Tuner end to end on the embedded sample: a 2-trial random search over a tiny space between
Transform and the Trainer, every trial visible afterwards, the Trainer training with the best
values, and a later run importing them (`--hyperparameters RUN`) instead of tuning again."""

import json

import pytest

from training import run_experiment, runs
from training.runs import find_run, load_runs

SPACE = {
    "network_args.layer_size": [16, 48],
    "train_args.learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
}
CONFIG = {"network": "mlp", "network_args": {"num_layers": 1}, "train_args": {"epochs": 1}}


def run(root, config, *flags):
    args = run_experiment.parse_args(
        [json.dumps(config), "--root", str(root), "--data-dir", "data/sample/emnist", *flags]
    )
    return run_experiment.run(args)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("tuner")


@pytest.fixture(scope="module")
def tuned(root):
    result = run(root, {**CONFIG, "tune": {"algorithm": "random", "max_trials": 2, "space": SPACE}})
    return find_run(load_runs(str(root / "metadata.sqlite")), result["run_id"])


def test_trials_are_recorded_and_the_trainer_uses_the_best(tuned):
    assert tuned.nodes["Tuner"].state == "COMPLETE"
    assert list(tuned.nodes).index("Tuner") < list(tuned.nodes).index("Trainer")
    trials = tuned.trials()
    assert len(trials) == 2 and all(t["status"] == "COMPLETED" and t["epochs"] == 1 for t in trials)
    assert trials[0]["hyperparameters"] != trials[1]["hyperparameters"]
    assert all(0 <= t["objective"] <= 1 and t["seconds"] > 0 for t in trials)
    best = max(trials, key=lambda t: t["objective"])["hyperparameters"]  # val_accuracy: higher
    trained = tuned.training["config"]
    assert trained["network_args"]["layer_size"] == best["network_args.layer_size"]
    assert trained["train_args"]["learning_rate"] == pytest.approx(best["train_args.learning_rate"])


def test_show_prints_the_trials(tuned, root, capsys):
    assert runs.main(["--root", str(root), "show", tuned.name]) == 0
    shown = capsys.readouterr().out
    trials = shown.split("trials:")[1].split("epochs (kept")[0]
    assert len([line for line in trials.splitlines() if '"network_args.layer_size"' in line]) == 2
    assert "best hyperparameters:" in shown


def test_a_run_imports_a_tuned_runs_hyperparameters(tuned, root):
    result = run(root, CONFIG, "--hyperparameters", tuned.name)
    nodes = result["nodes"]
    assert "Tuner" not in nodes
    assert nodes["hyperparameters_importer"].state in ("COMPLETE", "CACHED")  # same artifact again
    assert nodes["Trainer"].state == "COMPLETE"
    imported = find_run(load_runs(str(root / "metadata.sqlite")), result["run_id"])
    assert imported.training["config"]["network_args"] == tuned.training["config"]["network_args"]
    again = run(root, CONFIG, "--hyperparameters", tuned.name)["nodes"]
    assert again["Trainer"].state == "CACHED"


def test_ranges_follow_the_arguments_type_and_algorithms_map_to_oracles():
    from trainer.config import ExperimentConfig
    from trainer.tuner import _oracle, search_space

    config = ExperimentConfig.from_dict(
        {
            **CONFIG,
            "tune": {
                "algorithm": "hyperband",
                "space": {
                    "network_args.dropout": {"min": 0, "max": 0.5},
                    "network_args.layer_size": {"min": 16, "max": 64},
                    "network_args.num_layers": [1, 2],
                },
            },
        }
    )
    kinds = {p.name: type(p).__name__ for p in search_space(config).space}
    assert kinds == {
        "network_args.dropout": "Float",
        "network_args.layer_size": "Int",
        "network_args.num_layers": "Choice",
    }
    assert (type(_oracle(config)).__name__, _oracle(config).max_trials) == ("HyperbandOracle", 10)
    bayesian = ExperimentConfig.from_dict(
        {
            **CONFIG,
            "tune": {
                "algorithm": "bayesian",
                "max_trials": 3,
                "space": {"network_args.num_layers": [1, 2]},
            },
        }
    )
    assert (type(_oracle(bayesian)).__name__, _oracle(bayesian).max_trials) == (
        "BayesianOptimizationOracle",
        3,
    )


def test_tensorboard_logdir_has_epochs_and_hparams_of_runs_and_trials(tuned, root, capsys):
    import tensorflow as tf

    assert runs.main(["--root", str(root), "tensorboard", "--no-serve"]) == 0
    folder = root / "tensorboard" / tuned.name
    assert (folder / "train").is_dir() and (folder / "validation").is_dir()

    def summaries(subfolder: str) -> set:
        [events] = (folder / subfolder).glob("events.out.tfevents.*")
        return {
            (value.tag, value.metadata.plugin_data.plugin_name)
            for event in tf.compat.v1.train.summary_iterator(str(events))
            for value in event.summary.value
        }

    assert {
        ("_hparams_/session_start_info", "hparams"),
        ("eval/sparse_categorical_accuracy", "scalars"),
    } <= summaries("hparams")
    for trial in ("trial_0", "trial_1"):
        assert summaries(trial) == {
            ("_hparams_/session_start_info", "hparams"),
            ("trial/objective", "scalars"),
        }


def test_the_tuner_works_on_the_line_detector_like_on_any_kind(tmp_path):
    """Pages: the objective defaults to the detector's val_mean_iou (higher is better) and the
    Trainer trains the best trial's values."""
    config = {
        "dataset": "EmnistPagesDataset",
        "dataset_args": {"page_size": 32, "num_train": 8, "num_eval": 4, "max_lines": 3},
        "model": "LineDetectorModel",
        "network": "line_detector_fcn",
        "network_args": {"blocks": 1, "kernel_size": 3, "dilations": [1, 2]},
        "train_args": {"epochs": 1, "batch_size": 4},
        "tune": {"max_trials": 2, "space": {"network_args.filters": [4, 8]}},
    }
    result = run(tmp_path, config, "--min-mean-iou", "0")
    tuned = find_run(load_runs(str(tmp_path / "metadata.sqlite")), result["run_id"])
    assert tuned.nodes["Tuner"].state == "COMPLETE"
    trials = tuned.trials()
    assert {t["hyperparameters"]["network_args.filters"] for t in trials} == {4, 8}
    best = max(trials, key=lambda t: t["objective"])["hyperparameters"]
    assert tuned.training["config"]["network_args"]["filters"] == best["network_args.filters"]
