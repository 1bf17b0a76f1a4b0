"""AnomaliesGate's report: hand-built anomalies, and real ones from TFDV against the curated schema."""

from pathlib import Path

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.anomalies_gate import ANOMALIES_FILE, describe_anomalies, read_anomalies

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "emnist" / "schema.pbtxt"


def anomalies(**features) -> anomalies_pb2.Anomalies:
    """Anomalies with one reason per feature, given as feature=description."""
    result = anomalies_pb2.Anomalies()
    for feature, description in features.items():
        info = result.anomaly_info[feature]
        info.short_description = "Out-of-range values"
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        info.reason.add(
            type=anomalies_pb2.AnomalyInfo.INT_TYPE_BIG_INT,
            short_description="Out-of-range values",
            description=description,
        )
    return result


def test_no_anomalies_no_lines():
    assert describe_anomalies({}) == []
    assert (
        describe_anomalies({"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()})
        == []
    )


def test_lines_name_split_feature_and_reason():
    lines = describe_anomalies(
        {
            "train": anomalies(label="Unexpectedly large value: 99."),
            "eval": anomalies(
                label="Unexpectedly small value: -1.", character="Unexpected string values"
            ),
        }
    )
    assert lines == [
        "split 'eval': feature 'character': Unexpected string values",
        "split 'eval': feature 'label': Unexpectedly small value: -1.",
        "split 'train': feature 'label': Unexpectedly large value: 99.",
    ]


def test_clean_split_adds_no_lines():
    lines = describe_anomalies(
        {
            "train": anomalies_pb2.Anomalies(),
            "eval": anomalies(label="Unexpectedly large value: 99."),
        }
    )
    assert lines == ["split 'eval': feature 'label': Unexpectedly large value: 99."]


def test_several_reasons_are_joined():
    result = anomalies(label="Unexpectedly large value: 99.")
    result.anomaly_info["label"].reason.add(description="Feature shape dropped")
    (line,) = describe_anomalies({"train": result})
    assert (
        line
        == "split 'train': feature 'label': Unexpectedly large value: 99.; Feature shape dropped"
    )


def test_falls_back_to_the_info_description():
    result = anomalies_pb2.Anomalies()
    result.anomaly_info["image"].description = "Column dropped"
    result.anomaly_info["label"].short_description = "Out-of-range values"
    assert describe_anomalies({"train": result}) == [
        "split 'train': feature 'image': Column dropped",
        "split 'train': feature 'label': Out-of-range values",
    ]


def test_dataset_level_anomaly_is_reported():
    result = anomalies_pb2.Anomalies()
    result.dataset_anomaly_info.reason.add(description="Low number of examples: 0")
    assert describe_anomalies({"eval": result}) == [
        "split 'eval': dataset: Low number of examples: 0"
    ]


def test_read_anomalies_reads_each_split(tmp_path):
    for split, description in [
        ("train", "Unexpectedly large value: 99."),
        ("eval", "Unexpectedly large value: 70."),
    ]:
        (tmp_path / f"Split-{split}").mkdir()
        (tmp_path / f"Split-{split}" / ANOMALIES_FILE).write_bytes(
            anomalies(label=description).SerializeToString()
        )
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path)
    artifact.split_names = artifact_utils.encode_split_names(["train", "eval"])
    read = read_anomalies(artifact)
    assert set(read) == {"train", "eval"}
    assert describe_anomalies(read) == [
        "split 'eval': feature 'label': Unexpectedly large value: 70.",
        "split 'train': feature 'label': Unexpectedly large value: 99.",
    ]


# --- real anomalies from TFDV ----------------------------------------------------------------


def example(label: int, character=None) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x89PNG..."])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    if character is not None:
        feature["character"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[character]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def validate(path: Path, records: list) -> anomalies_pb2.Anomalies:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    statistics = tfdv.generate_statistics_from_tfrecord(
        str(path),
        output_path=str(path.with_suffix(".stats")),
        pipeline_options=PipelineOptions(["--runner=FnApiRunner"]),
    )
    return tfdv.validate_statistics(statistics, tfdv.load_schema_text(str(SCHEMA_FILE)))


@pytest.fixture(scope="module")
def tfdv_anomalies(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tfdv")
    good = [example(0, b"0"), example(10, b"A"), example(61, b"z")]
    bad = [example(0, b"0"), example(99, b"z"), example(3)]  # label out of range; character missing
    return {
        "train": validate(tmp / "train.tfrecord", good),
        "eval": validate(tmp / "eval.tfrecord", bad),
    }


def test_curated_schema_accepts_good_examples(tfdv_anomalies):
    assert describe_anomalies({"train": tfdv_anomalies["train"]}) == []


def test_real_anomalies_name_split_and_features(tfdv_anomalies):
    lines = describe_anomalies(tfdv_anomalies)
    assert len(lines) == 2
    character, label = lines
    assert character.startswith("split 'eval': feature 'character': ")
    assert "present in fewer examples than expected" in character
    assert label == "split 'eval': feature 'label': Unexpectedly large value: 99."
