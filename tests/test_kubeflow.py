"""The same pipeline definition compiles with KubeflowV2DagRunner to a KFP IR spec."""

import yaml
from kubeflow_fixtures import refused

from kubeflow.runner import IMAGE_SCHEMA_DIR, compile_pipeline
from kubeflow.spec import executor_of
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
    error = refused('{"network": "resnet"}', tmp_path / "pipeline.yaml", capsys)
    assert "network: unknown value 'resnet'" in error


def test_line_pipeline_builds_its_glyph_banks_from_emnist_examples(tmp_path):
    output = tmp_path / "lines.yaml"
    config = ExperimentConfig.from_dict({"dataset": "EmnistLinesDataset", "model": "LineModelCtc"})
    compile_pipeline(
        config,
        str(output),
        "gs://b/root",
        "gs://b/lines",
        "gs://b/serving/lines",
        glyph_examples_dir="gs://b/emnist",
        max_cer=0.2,
    )
    spec = yaml.safe_load(output.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert spec["pipelineInfo"]["name"] == "text-recognizer-lines"
    glyph_examples = tasks["GlyphExampleGen"]["inputs"]["parameters"]["input_base"]
    assert glyph_examples == {"runtimeValue": {"constant": "gs://b/emnist"}}
    assert tasks["GlyphBanks"]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"] == {
        "outputArtifactKey": "examples",
        "producerTask": "GlyphExampleGen",
    }
    for consumer in ("Transform", "Trainer"):
        assert tasks[consumer]["inputs"]["artifacts"]["glyph_banks"]["taskOutputArtifact"] == {
            "outputArtifactKey": "glyph_banks",
            "producerTask": "GlyphBanks",
        }, consumer
        args = executor_of(spec, consumer)["container"]["args"]
        assert f"components.glyph_banks.{consumer}Executor" in args, consumer
    assert "components.glyph_banks.Executor" in executor_of(spec, "GlyphBanks")["container"]["args"]
    transform = str(tasks["Transform"]["inputs"]["parameters"])
    assert "transform.line_preprocessing.preprocessing_fn" in transform
    assert ".npz" not in transform  # the banks are an artifact now, not paths in the config
    assert f"{IMAGE_SCHEMA_DIR}/emnist_lines/schema.pbtxt" in str(tasks["ImportSchemaGen"])


def test_cli_asks_a_line_pipeline_for_its_glyph_examples(tmp_path, capsys):
    config = '{"dataset": "EmnistLinesDataset", "model": "LineModelCtc"}'
    error = refused(config, tmp_path / "lines.yaml", capsys)
    assert "EmnistLinesDataset pipelines need --glyph-examples-dir DIR" in error
