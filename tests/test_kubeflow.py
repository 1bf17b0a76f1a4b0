"""The same pipeline definition compiles with KubeflowV2DagRunner to a KFP IR spec."""

import pytest
import yaml

from kubeflow.runner import IMAGE_SCHEMA_DIR, compile_pipeline, main
from trainer.config import ExperimentConfig

COMPONENTS = [
    "ImportExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "AnomaliesGate",
    "Transform",
    "Trainer",
    "Evaluator",
    "Pusher",
]


def test_compiled_spec_names_every_component_and_its_image(tmp_path):
    output = tmp_path / "pipeline.yaml"
    compile_pipeline(
        ExperimentConfig.from_dict({"network": "lenet"}),
        str(output),
        pipeline_root="gs://bucket/root",
        examples_dir="gs://bucket/examples",
        serving_model_dir="gs://bucket/serving/characters",
        image="registry.example/text-recognizer:test",
    )
    spec = yaml.safe_load(output.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    for component in COMPONENTS:
        assert component in tasks, component
        label = spec["components"][tasks[component]["componentRef"]["name"]]["executorLabel"]
        assert executors[label]["container"]["image"] == "registry.example/text-recognizer:test"
    assert tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"] == {
        "outputArtifactKey": "model",
        "producerTask": "latest_pushed_model",
    }
    assert tasks["latest_pushed_model"]["cachingOptions"] == {"enableCache": False}
    pusher = spec["components"]["Pusher"]["executorLabel"]
    assert "components.pusher.Executor" in executors[pusher]["container"]["args"]
    schema_file = tasks["ImportSchemaGen"]["inputs"]["parameters"]["schema_file"]
    assert f"{IMAGE_SCHEMA_DIR}/emnist/schema.pbtxt" in str(schema_file)
    trainer_config = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
    assert "lenet" in str(trainer_config["custom_config"])


def test_cli_rejects_a_bad_config_before_compiling(tmp_path, capsys):
    output = tmp_path / "pipeline.yaml"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                '{"network": "resnet"}',
                "--output",
                str(output),
                "--pipeline-root",
                "r",
                "--examples-dir",
                "e",
                "--serving-dir",
                "s",
            ]
        )
    assert exited.value.code == 2
    assert "network: unknown value 'resnet'" in capsys.readouterr().err
    assert not output.exists()


def test_line_pipeline_compiles_with_its_glyph_banks(tmp_path):
    output = tmp_path / "lines.yaml"
    config = ExperimentConfig.from_dict({"dataset": "EmnistLinesDataset", "model": "LineModelCtc"})
    banks = ("gs://bucket/glyphs-train.npz", "gs://bucket/glyphs-eval.npz")
    compile_pipeline(
        config,
        str(output),
        "gs://b/root",
        "gs://b/lines",
        "gs://b/serving/lines",
        glyph_banks=banks,
        max_cer=0.2,
    )
    spec = yaml.safe_load(output.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert spec["pipelineInfo"]["name"] == "text-recognizer-lines"
    transform = str(tasks["Transform"]["inputs"]["parameters"])
    assert all(bank in transform for bank in banks)
    assert "transform.line_preprocessing.preprocessing_fn" in transform
    assert f"{IMAGE_SCHEMA_DIR}/emnist_lines/schema.pbtxt" in str(tasks["ImportSchemaGen"])
