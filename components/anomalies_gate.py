"""AnomaliesGate: stops the pipeline when ExampleValidator found anomalies.

ExampleValidator only records anomalies; nothing downstream reads them, so a bad split would be
trained on silently. This component fails with a message that names each split and feature, and
Transform is made to wait for it.
"""

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes in each Split-<name> directory


class DataAnomaliesError(RuntimeError):
    """The examples do not match the curated schema."""


def describe_anomalies(anomalies_by_split: dict) -> list:
    """One readable line per anomaly: split, feature and what is wrong."""
    lines = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            lines.append(f"split '{split}': feature '{feature}': {_text(info)}")
        if anomalies.HasField("dataset_anomaly_info"):
            lines.append(f"split '{split}': dataset: {_text(anomalies.dataset_anomaly_info)}")
    return lines


def _text(info: anomalies_pb2.AnomalyInfo) -> str:
    details = "; ".join(r.description for r in info.reason if r.description)
    return details or info.description or info.short_description


def read_anomalies(artifact) -> dict:
    splits = artifact_utils.decode_split_names(artifact.split_names)
    return {
        split: anomalies_pb2.Anomalies.FromString(
            tf.io.gfile.GFile(
                os.path.join(artifact.uri, f"Split-{split}", ANOMALIES_FILE), "rb"
            ).read()
        )
        for split in splits
    }


@component
def AnomaliesGate(
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
) -> None:
    """Raises DataAnomaliesError listing every anomaly, or passes when there are none."""
    problems = describe_anomalies(read_anomalies(anomalies))
    if problems:
        raise DataAnomaliesError("Data validation failed:\n  " + "\n  ".join(problems))
