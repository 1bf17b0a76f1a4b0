"""The lines pipeline end to end on the embedded sample: Transform draws lines, the CTC model
trains, TFMA reports CER/WER/exact-line accuracy sliced by length, the model is pushed and reads
a drawn line through its serving signature."""

import json
from pathlib import Path

import pytest
import tensorflow_model_analysis as tfma

from serving.predictors import LinePredictor
from training import run_experiment
from training.outputs import custom_property

CONFIG = {
    "dataset": "EmnistLinesDataset",
    "model": "LineModelCtc",
    "network": "line_lstm_ctc",
    "dataset_args": {"max_length": 6, "num_train": 256, "num_eval": 48},
    "network_args": {"lstm_dim": 32, "conv_dim": 16},
    "train_args": {"epochs": 2, "batch_size": 32},
}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("lines")
    args = run_experiment.parse_args(
        [json.dumps(CONFIG), "--save", "--root", str(root), "--max-cer", "1.5"]
    )
    return run_experiment.run(args)


def test_lines_are_drawn_trained_evaluated_by_length_and_pushed(result):
    nodes = result["nodes"]
    assert all(n.state == "COMPLETE" for n in nodes.values()), nodes
    metrics = dict(
        tfma.load_eval_result(nodes["Evaluator"].outputs["evaluation"][0].uri).slicing_metrics
    )
    overall = metrics[()][""][""]
    assert overall["example_count"]["doubleValue"] == 48
    assert 0 <= overall["exact_line_accuracy"]["doubleValue"] <= 1
    assert overall["cer"]["doubleValue"] >= 0 and overall["wer"]["doubleValue"] >= 0
    lengths = {key[0][1] for key in metrics if key}
    assert lengths and all(1 <= length <= 6 for length in lengths)
    assert custom_property(nodes["Pusher"].outputs["pushed_model"][0], "pushed") == 1


def test_pushed_line_model_reads_a_drawn_line(result, tmp_path):
    summary = run_experiment.summarize(result)
    destination = next(line for line in summary if line.startswith("Pushed blessed model to "))
    model_dir = Path(destination.removeprefix("Pushed blessed model to "))
    assert model_dir.parent.name == "lines" and model_dir.name.isdigit()
    assert any(line.startswith("Prediction on eval example 0") for line in summary)
    image, _ = run_experiment._first_eval_example(result)
    text, confidence = LinePredictor(model_dir.parent).predict(image)
    assert isinstance(text, str) and len(text) <= 6
    assert 0 <= confidence <= 1
