"""Beam profiles: the local ones run (local-mp, with worker processes, computes the same
statistics as local on the embedded sample); the remote ones are checked before anything runs."""

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2

from data.sample import SAMPLE_DIR
from pipeline.beam_profiles import PROFILES, BeamProfileError, beam_args

REMOTE_FLAGS = {
    "dataflow": [
        "--project=p",
        "--region=europe-west1",
        "--temp_location=gs://b/tmp",
        "--sdk_container_image=registry.example/pipeline:1",
    ],
    "flink": ["--job_endpoint=flink-jobserver:8099", "--environment_config=localhost:50000"],
    "spark": ["--job_endpoint=spark-jobserver:8099", "--environment_config=localhost:50000"],
}


@pytest.mark.parametrize("profile", sorted(REMOTE_FLAGS))
def test_remote_profiles_parse_with_their_flags_and_refuse_without(profile):
    args = beam_args(profile, REMOTE_FLAGS[profile])
    assert args[0].startswith("--runner=") and set(REMOTE_FLAGS[profile]) <= set(args)
    for missing in REMOTE_FLAGS[profile]:
        name = missing.split("=")[0]
        with pytest.raises(BeamProfileError, match=f"{name}="):
            beam_args(profile, [flag for flag in REMOTE_FLAGS[profile] if flag != missing])


def test_unknown_profiles_and_options_are_refused_and_extra_options_override():
    with pytest.raises(BeamProfileError, match="unknown Beam profile"):
        beam_args("yarn")
    with pytest.raises(BeamProfileError, match="--no_such_option"):
        beam_args("local", ["--no_such_option=1"])
    assert beam_args("local-mp", ["--direct_num_workers=1"]).count("--direct_num_workers=1") == 1
    assert "--direct_num_workers=2" not in beam_args("local-mp", ["--direct_num_workers=1"])
    assert all(PROFILES[name].args[0].startswith("--runner=") for name in PROFILES)


def _statistics(root, profile: str) -> dict:
    """{split: DatasetFeatureStatistics} of ImportExampleGen -> StatisticsGen over the sample."""
    from tfx.components.example_gen.import_example_gen.component import ImportExampleGen
    from tfx.components.statistics_gen.component import StatisticsGen
    from tfx.orchestration import metadata, pipeline
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
    from tfx.proto import example_gen_pb2

    example_gen = ImportExampleGen(
        input_base=str(SAMPLE_DIR),
        input_config=example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=s, pattern=f"{s}/*") for s in ("train", "eval")
            ]
        ),
    )
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    BeamDagRunner().run(
        pipeline.Pipeline(
            pipeline_name=f"stats-{profile}",
            pipeline_root=str(root / "pipeline"),
            components=[example_gen, statistics_gen],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(
                str(root / "m.sqlite")
            ),
            beam_pipeline_args=beam_args(profile),
        )
    )
    found = {}
    for path in tf.io.gfile.glob(
        str(root / "pipeline" / "StatisticsGen" / "statistics" / "*" / "Split-*")
    ):
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(
            tf.io.gfile.GFile(f"{path}/FeatureStats.pb", "rb").read()
        )
        found[path.rsplit("Split-", 1)[1]] = stats.datasets[0]
    return found


def _summary(dataset) -> dict:
    """The exact parts of a split's statistics: counts, ranges, distinct values."""
    features = {}
    for feature in dataset.features:
        kind = feature.WhichOneof("stats")
        stats = getattr(feature, kind)
        features[feature.path.step[0]] = (
            stats.common_stats.num_non_missing,
            getattr(stats, "min", None),
            getattr(stats, "max", None),
            getattr(stats, "unique", None),
            round(getattr(stats, "mean", 0.0), 6),
        )
    return {"num_examples": dataset.num_examples, "features": features}


def test_local_mp_gives_the_same_statistics_as_local(tmp_path):
    local = _statistics(tmp_path / "local", "local")
    multi = _statistics(tmp_path / "local-mp", "local-mp")
    assert set(local) == {"train", "eval"} == set(multi)
    assert local["train"].num_examples == 2480 and local["eval"].num_examples == 620
    for split in local:
        assert _summary(local[split]) == _summary(multi[split]), split
