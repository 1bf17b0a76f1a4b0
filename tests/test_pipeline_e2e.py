"""The character pipeline end to end on the embedded sample, with BeamDagRunner: blessed models are
pushed in TF Serving layout and predict; reruns hit the cache; models below the accuracy bound or
worse than the latest blessed model are not pushed; data anomalies stop the run."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

from components.anomalies_gate import DataAnomaliesError
from data.features import CHARACTER_KEY, EVAL_SPLIT, IMAGE_KEY, LABEL_KEY, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from pipeline.pipeline import create_pipeline
from pipeline.tasks import task_for
from serving.predictors import CharacterPredictor
from trainer.config import ExperimentConfig
from training import run_experiment
from training.outputs import custom_property

CONFIG = {"network": "mlp", "network_args": {"layer_size": 256}, "train_args": {"epochs": 6}}


def run(root, config=CONFIG, *flags):
    args = run_experiment.parse_args([json.dumps(config), "--save", "--root", str(root), *flags])
    return run_experiment.run(args)


def versions(root) -> list:
    return sorted(p.name for p in (Path(root) / "serving" / "characters").iterdir())


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def first_run(root):
    return run(root, CONFIG, "--min-accuracy", "0.3")


def test_blessed_model_is_pushed_in_serving_layout_and_predicts(root, first_run):
    nodes = first_run["nodes"]
    assert all(n.state == "COMPLETE" for n in nodes.values()), nodes
    assert custom_property(nodes["Evaluator"].outputs["blessing"][0], "blessed") == 1
    [version] = versions(root)
    assert version.isdigit()
    model_dir = Path(root) / "serving" / "characters" / version
    assert (model_dir / "saved_model.pb").exists()
    assert set(tf.saved_model.load(str(model_dir)).signatures) == {
        "serving_default",
        "from_examples",
    }

    images, _labels, characters = read_split(SAMPLE_DIR, EVAL_SPLIT)
    predictions = CharacterPredictor(model_dir.parent).predict_batch(list(images[:200]))
    accuracy = np.mean([p == c for (p, _), c in zip(predictions, characters[:200])])
    assert accuracy > 0.3  # chance is 1/62
    summary = "\n".join(run_experiment.summarize(first_run))
    assert f"Pushed blessed model to {model_dir}" in summary
    assert "Prediction on eval example 0" in summary


def test_rerun_reuses_cached_results_and_does_not_push_twice(root, first_run):
    nodes = run(root, CONFIG, "--min-accuracy", "0.3")["nodes"]
    for node in ("ImportExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert nodes[node].state == "CACHED", node
    pushed = nodes["Pusher"].outputs["pushed_model"][0]
    assert custom_property(pushed, "pushed") == 1
    [version] = versions(root)
    assert custom_property(pushed, "pushed_destination").endswith(version)


def test_model_below_accuracy_bound_is_not_pushed(root, first_run):
    nodes = run(root, CONFIG, "--min-accuracy", "0.99")["nodes"]
    assert nodes["Trainer"].state == "CACHED"
    assert custom_property(nodes["Evaluator"].outputs["blessing"][0], "blessed") == 0
    assert custom_property(nodes["Pusher"].outputs["pushed_model"][0], "pushed") == 0
    assert len(versions(root)) == 1
    assert "Not pushed: the model was not blessed" in run_experiment.summarize({"nodes": nodes})


def test_model_worse_than_latest_blessed_is_not_pushed(root, first_run):
    worse = {"network": "mlp", "train_args": {"epochs": 1, "learning_rate": 1e-5}}
    nodes = run(root, worse, "--min-accuracy", "0.0")["nodes"]
    assert nodes["Trainer"].state == "COMPLETE"
    assert custom_property(nodes["Evaluator"].outputs["blessing"][0], "blessed") == 0
    assert len(versions(root)) == 1


def _write_examples(path: Path, labels: list, characters: list) -> None:
    path.mkdir(parents=True)
    png = tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy()
    with tf.io.TFRecordWriter(str(path / "data.tfrecord.gz"), "GZIP") as writer:
        for label, character in zip(labels, characters):
            feature = {
                IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                CHARACTER_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[character.encode()])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )


def test_data_anomalies_stop_the_run_naming_the_feature(tmp_path):
    examples = tmp_path / "examples"
    _write_examples(examples / TRAIN_SPLIT, [0, 1, 99], ["0", "1", "1"])
    _write_examples(examples / EVAL_SPLIT, [0, 1], ["0", "1"])
    pipeline = create_pipeline(
        pipeline_name="anomalies",
        pipeline_root=str(tmp_path / "root"),
        examples_dir=str(examples),
        task=task_for(
            ExperimentConfig.from_dict(CONFIG), {}, min_accuracy=0.5, max_accuracy_drop=0.01
        ),
        metadata_path=str(tmp_path / "metadata.sqlite"),
        beam_pipeline_args=run_experiment.DEFAULT_BEAM_ARGS,
    )
    with pytest.raises(Exception) as raised:
        BeamDagRunner().run(pipeline)
    cause = run_experiment.root_cause(raised.value)
    assert isinstance(cause, DataAnomaliesError)
    assert "split 'train': feature 'label'" in str(cause)
    assert not (tmp_path / "root" / "Transform").exists()
