"""The GlyphBanks component outside a pipeline: its executor builds the two banks from an Examples
artifact of EMNIST characters (the embedded sample's), and the consumers' executors hand their
paths to TFX's executors in custom_config."""

import json
import shutil

import numpy as np
import pytest
from tfx.types import standard_artifact_utils, standard_artifacts

from components import glyph_banks
from data.emnist import BYCLASS_CHARACTERS
from data.errors import DatasetError
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split, write_split
from transform.line_synthesis import load_glyph_bank


def _examples(tmp_path, source=SAMPLE_DIR) -> standard_artifacts.Examples:
    """An Examples artifact laid out as ImportExampleGen writes it, holding `source`'s splits."""
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = standard_artifact_utils.encode_split_names([TRAIN_SPLIT, EVAL_SPLIT])
    for split in (TRAIN_SPLIT, EVAL_SPLIT):
        shutil.copytree(source / split, tmp_path / "examples" / f"Split-{split}")
    return examples


def _run(tmp_path, examples, max_per_class=glyph_banks.MAX_GLYPHS_PER_CLASS):
    banks = glyph_banks.GlyphBanks()
    banks.uri = str(tmp_path / "banks")
    glyph_banks.Executor().Do(
        {glyph_banks.EXAMPLES_KEY: [examples]},
        {glyph_banks.BANKS_KEY: [banks]},
        {glyph_banks.MAX_PER_CLASS_KEY: max_per_class},
    )
    return banks


def test_banks_hold_the_sample_glyphs_of_each_split(tmp_path):
    examples = _examples(tmp_path)
    banks = _run(tmp_path, examples, max_per_class=25)
    train_path, eval_path = glyph_banks.bank_paths(banks.uri)
    train, evaluation = load_glyph_bank(train_path), load_glyph_bank(eval_path)
    # The sample has 40 train and 10 eval glyphs of each of the 62 classes.
    assert train.counts.tolist() == [25] * len(BYCLASS_CHARACTERS)
    assert evaluation.counts.tolist() == [10] * len(BYCLASS_CHARACTERS)
    assert banks.get_int_custom_property("train_glyphs") == 25 * 62
    assert banks.get_int_custom_property("eval_glyphs") == 10 * 62
    assert banks.get_string_custom_property("source_uri") == examples.uri
    # The eval bank is the sample's eval images themselves, grouped by class.
    images, labels, _ = read_split(SAMPLE_DIR, EVAL_SPLIT)
    order = np.argsort(labels, kind="stable")
    assert np.array_equal(evaluation.images, images[order])
    assert np.array_equal(evaluation.labels, labels[order])


def test_a_split_missing_characters_is_an_error_naming_it(tmp_path):
    source = tmp_path / "source"
    images, labels, _ = read_split(SAMPLE_DIR, TRAIN_SPLIT)
    keep = labels != BYCLASS_CHARACTERS.index("Q")
    for split in (TRAIN_SPLIT, EVAL_SPLIT):
        write_split(images[keep], labels[keep], BYCLASS_CHARACTERS, source, split, num_shards=1)
    with pytest.raises(
        DatasetError, match="Split-train: glyph bank has no image of 1 characters: 'Q'"
    ):
        _run(tmp_path, _examples(tmp_path, source))


def test_unreadable_examples_are_an_error_naming_the_split(tmp_path):
    examples = _examples(tmp_path)
    for shard in (tmp_path / "examples" / f"Split-{TRAIN_SPLIT}").iterdir():
        shard.write_bytes(b"not a tfrecord")
    with pytest.raises(DatasetError, match="Split-train: not EMNIST character examples"):
        _run(tmp_path, examples)


def test_consumers_get_the_bank_paths_in_custom_config():
    banks = glyph_banks.GlyphBanks()
    banks.uri = "gs://bucket/root/GlyphBanks/glyph_banks/7"
    other = standard_artifacts.Examples()
    inputs, properties = glyph_banks.with_bank_paths(
        {glyph_banks.BANKS_KEY: [banks], "examples": [other]},
        {"custom_config": json.dumps({"synthesis": {"max_length": 6}}), "run_fn": "m.f"},
    )
    assert inputs == {"examples": [other]}
    assert properties["run_fn"] == "m.f"
    assert json.loads(properties["custom_config"]) == {
        "synthesis": {"max_length": 6},
        "glyph_banks": [f"{banks.uri}/glyphs-train.npz", f"{banks.uri}/glyphs-eval.npz"],
    }


def test_a_line_pipeline_feeds_the_banks_to_transform_trainer_and_tuner(tmp_path):
    from pipeline.pipeline import GLYPH_EXAMPLES_ID, create_pipeline
    from pipeline.tasks import task_for
    from trainer.config import ExperimentConfig
    from trainer.datasets.base import GLYPH_EXAMPLES

    config = ExperimentConfig.from_dict(
        {
            "dataset": "EmnistLinesDataset",
            "model": "LineModelCtc",
            "dataset_args": {"resample_every_epoch": True},
            "tune": {"max_trials": 1, "space": {"network_args.lstm_dim": [16, 32]}},
        }
    )
    pipeline = create_pipeline(
        "lines",
        str(tmp_path / "root"),
        str(tmp_path / "lines"),
        task_for(config, {GLYPH_EXAMPLES: str(tmp_path / "emnist")}),
    )
    nodes = {node.id: node for node in pipeline.components}
    banks = nodes[glyph_banks.COMPONENT_ID]
    assert banks.inputs["examples"].producer_component_id == GLYPH_EXAMPLES_ID
    assert nodes[GLYPH_EXAMPLES_ID].exec_properties["input_base"] == str(tmp_path / "emnist")
    for consumer in ("Transform", "Tuner", "Trainer"):
        node = nodes[consumer]
        assert node.inputs["glyph_banks"].producer_component_id == glyph_banks.COMPONENT_ID
        assert node.executor_spec.executor_class.__module__ == "components.glyph_banks"
    assert "glyph_banks" not in json.loads(nodes["Transform"].exec_properties["custom_config"])
