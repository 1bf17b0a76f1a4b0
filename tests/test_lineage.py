"""`python -m training.lineage` on a tiny character pipeline run on the embedded sample: the pushed
version leads back to the run that pushed it (not a cached rerun), the examples it trained on with
their span and the dataset version's metadata, the Evaluator's metrics and blessing, the config."""

import json

import pytest

from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from training import lineage, run_experiment

CONFIG = {"network": "mlp", "network_args": {"num_layers": 1, "layer_size": 16}}


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """(root, first run id, second run id): the second run, the same config again, is cached."""
    root = tmp_path_factory.mktemp("lineage")
    flags = ["--save", "--root", str(root), "--min-accuracy", "0", "--data-dir", str(SAMPLE_DIR)]
    ids = []
    for _ in range(2):
        args = run_experiment.parse_args(
            [json.dumps({**CONFIG, "train_args": {"epochs": 1}}), *flags]
        )
        ids.append(run_experiment.run(args)["run_id"])
    return root, *ids


def test_lineage_names_the_pushing_run_its_data_span_metrics_and_config(pushed, capsys):
    root, first, second = pushed
    assert lineage.main(["--root", str(root), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["run"]["name"] == first != second  # the rerun found the model already pushed
    assert record["config"]["network_args"].items() >= CONFIG["network_args"].items()
    assert record["evaluation"]["blessed"] is True
    assert 0 <= record["evaluation"]["metrics"]["sparse_categorical_accuracy"] <= 1
    assert record["trainer"]["kept_epoch"] == 1
    [examples] = [row for row in record["data"] if row["node"] == "ImportExampleGen"]
    assert examples["span"] == 1 and examples["input_base"].startswith(str(root))
    dataset = examples["dataset"]
    assert dataset["dataset"] == "EmnistDataset" and dataset["span"] == 1
    assert dataset["counts"] == {EVAL_SPLIT: 620, TRAIN_SPLIT: 2480}
    shards = {p.relative_to(SAMPLE_DIR).as_posix() for p in SAMPLE_DIR.rglob("*.tfrecord.gz")}
    assert set(dataset["input_sha256"]) == shards
    assert examples["dataset_metadata"].endswith("span-1/metadata.json")
    assert any(row["node"] == "Transform" for row in record["data"])


def test_lineage_prints_it_for_people_and_refuses_unknown_versions(pushed, capsys):
    root = pushed[0]
    assert lineage.main(["--root", str(root)]) == 0
    text = capsys.readouterr().out
    assert f"pushed by run {pushed[1]}" in text
    assert "ImportExampleGen.examples span 1:" in text
    assert "dataset EmnistDataset span 1" in text and "train 2480" in text
    assert "BLESSED" in text

    assert lineage.main(["7", "--root", str(root)]) == 2
    assert "characters/7: no such pushed version" in capsys.readouterr().err
    assert lineage.main(["--model", "lines", "--root", str(root)]) == 2
    assert "no pushed versions of 'lines'" in capsys.readouterr().err
