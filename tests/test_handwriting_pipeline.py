"""Real-handwriting lines end to end on fixture pages in PAGE-XML: data.lines crops and splits
them, the curated schema validates them, Transform normalizes height and contrast, the CTC model
trains (warm-started from a first run), TFMA reports CER by length and by source, the model is
pushed and reads a line image of the pages through its serving signature."""

import json

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from line_fixtures import write_text_pages

from serving.predictors import LinePredictor
from training import run_experiment
from training.outputs import custom_property

ARGS = {"max_length": 16, "height": 32, "max_width": 512, "eval_fraction": 0.25}
CONFIG = {
    "dataset": "PageXmlLinesDataset",
    "model": "LineModelCtc",
    "network_args": {"lstm_dim": 16, "conv_dim": 8},
    "train_args": {"epochs": 1, "batch_size": 4},
}


def run(root, config: dict):
    args = run_experiment.parse_args(
        [
            json.dumps(config),
            "--save",
            "--root",
            str(root),
            "--max-cer",
            "1.0",
            "--max-cer-increase",
            "1.0",
        ]
    )
    return run_experiment.run(args)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pages = write_text_pages(tmp_path_factory.mktemp("pages") / "export (2024)", "pagexml")
    root = tmp_path_factory.mktemp("root")
    config = {**CONFIG, "dataset_args": {**ARGS, "path": str(pages)}}
    first = run(root, config)
    pushed = custom_property(
        first["nodes"]["Pusher"].outputs["pushed_model"][0], "pushed_destination"
    )
    warm = {**config, "train_args": {**config["train_args"], "warm_start": pushed}}
    return first, run(root, warm)


def test_real_lines_are_evaluated_by_length_and_source_and_pushed(runs):
    assert all(n.state == "COMPLETE" for n in runs[0]["nodes"].values()), runs[0]["nodes"]
    # The warm-started run reuses the data components and trains anew.
    assert {n.state for n in runs[1]["nodes"].values()} <= {"COMPLETE", "CACHED"}
    assert runs[1]["nodes"]["Transform"].state == "CACHED"
    assert runs[1]["nodes"]["Trainer"].state == "COMPLETE"
    for result in runs:
        nodes = result["nodes"]
        metrics = dict(
            tfma.load_eval_result(nodes["Evaluator"].outputs["evaluation"][0].uri).slicing_metrics
        )
        assert (
            metrics[()][""][""]["example_count"]["doubleValue"] == 2
        )  # one eval page of two lines
        assert {key[0][0] for key in metrics if key} == {"length", "source"}
        assert (("source", "pagexml"),) in metrics
        assert custom_property(nodes["Pusher"].outputs["pushed_model"][0], "pushed") == 1


def test_pushed_model_reads_a_real_line_image(runs):
    result = runs[1]
    summary = run_experiment.summarize(result)
    assert any(line.startswith("Prediction on eval example 0") for line in summary), summary
    image, _truth = run_experiment._first_eval_example(result)
    assert image.dtype == np.uint8 and image.mean() > 128  # dark ink on light paper, as scanned
    destination = custom_property(
        result["nodes"]["Pusher"].outputs["pushed_model"][0], "pushed_destination"
    )
    text, confidence = LinePredictor(destination).predict(image)
    assert isinstance(text, str) and len(text) <= ARGS["max_length"] and 0 <= confidence <= 1
