"""The lines pipeline end to end on the embedded sample: the GlyphBanks step builds the glyph
banks from the EMNIST character examples (an artifact, in ML Metadata's lineage), Transform draws
lines with them, the CTC model trains, TFMA reports CER/WER/exact-line accuracy sliced by length,
the model is pushed and reads a drawn line through its serving signature."""

import json
from pathlib import Path

import pytest
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2

from components.glyph_banks import GlyphBanks, bank_paths
from serving.predictors import LinePredictor
from training import run_experiment
from training.outputs import custom_property, open_store
from transform.line_synthesis import load_glyph_bank

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
    return run_experiment.run(args), root


def test_glyph_banks_are_built_in_the_run_and_feed_transform_and_trainer(result):
    result, root = result
    nodes = result["nodes"]
    banks = nodes["GlyphBanks"].outputs["glyph_banks"][0]
    glyph_examples = nodes["GlyphExampleGen"].outputs["examples"][0]
    assert custom_property(banks, "source_uri") == glyph_examples.uri
    # The sample has 40 train and 10 eval glyphs of each of the 62 classes.
    assert (custom_property(banks, "train_glyphs"), custom_property(banks, "eval_glyphs")) == (
        40 * 62,
        10 * 62,
    )
    train_bank, eval_bank = (load_glyph_bank(path) for path in bank_paths(banks.uri))
    assert (len(train_bank), len(eval_bank)) == (40 * 62, 10 * 62)
    assert result["resources"]["glyph_banks"] == bank_paths(banks.uri)
    assert not list(result["examples_dir"].glob("*.npz"))  # prepare() writes no banks now
    store = open_store(str(root / "metadata.sqlite"))
    for consumer in ("Transform", "Trainer"):
        events = store.get_events_by_execution_ids([nodes[consumer].execution.id])
        inputs = store.get_artifacts_by_id(
            [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.INPUT]
        )
        types = {t.id: t.name for t in store.get_artifact_types()}
        assert {(a.id, types[a.type_id]) for a in inputs} >= {(banks.id, GlyphBanks.TYPE_NAME)}


def test_lines_are_drawn_trained_evaluated_by_length_and_pushed(result):
    nodes = result[0]["nodes"]
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
    result, _ = result
    summary = run_experiment.summarize(result)
    destination = next(line for line in summary if line.startswith("Pushed blessed model to "))
    model_dir = Path(destination.removeprefix("Pushed blessed model to "))
    assert model_dir.parent.name == "lines" and model_dir.name.isdigit()
    assert any(line.startswith("Prediction on eval example 0") for line in summary)
    image, _ = run_experiment._first_eval_example(result)
    text, confidence = LinePredictor(model_dir.parent).predict(image)
    assert isinstance(text, str) and len(text) <= 6
    assert 0 <= confidence <= 1
