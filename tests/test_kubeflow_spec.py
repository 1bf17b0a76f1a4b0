"""The compiled YAML is one that open-source KFP runs: only container and importer executors, the
pipeline root set, resource requests and Beam options on every step; the baseline can be compiled
out."""

import pytest
import yaml
from kubeflow_fixtures import refused

from kubeflow.runner import compile_pipeline
from kubeflow.spec import RESOURCE_PROFILES, executor_of, finish, unrunnable_executors
from trainer.config import ExperimentConfig

CHARACTERS = ExperimentConfig.from_dict({"network": "lenet"})


def _compile(tmp_path, **options) -> dict:
    output = tmp_path / "pipeline.yaml"
    compile_pipeline(
        CHARACTERS,
        str(output),
        "gs://bucket/root",
        "gs://bucket/examples",
        "gs://bucket/serving/characters",
        **options,
    )
    return yaml.safe_load(output.read_text())


def test_yaml_holds_only_runnable_executors_a_pipeline_root_and_requests(tmp_path):
    spec = _compile(tmp_path, resource_profile="standard")
    kinds = {kind for executor in spec["deploymentSpec"]["executors"].values() for kind in executor}
    assert kinds <= {"container", "importer"}, kinds
    assert spec["defaultPipelineRoot"] == "gs://bucket/root"
    tasks = spec["root"]["dag"]["tasks"]
    assert "latest_pushed_model" in tasks and not any("resolver" in t for t in tasks)
    for task in tasks:
        container = executor_of(spec, task)["container"]
        assert container["args"][-1] == "--runner=FnApiRunner", task
        cpu, memory, limit = RESOURCE_PROFILES["standard"].get(
            task, RESOURCE_PROFILES["standard"]["*"]
        )
        assert container["resources"] == {
            "cpuRequest": cpu,
            "memoryRequest": memory,
            "memoryLimit": limit,
        }
    assert executor_of(spec, "Trainer")["container"]["resources"]["cpuRequest"] == 4.0
    pre_cache = executor_of(spec, "ImportExampleGen")["container"]["lifecycle"]["preCacheCheck"]
    assert "--runner=FnApiRunner" in pre_cache["args"]


def test_beam_profile_options_reach_every_step_and_the_baseline_compiles_out(tmp_path):
    spec = _compile(
        tmp_path,
        beam_profile="flink",
        baseline=False,
        extra_beam_args=(
            "--job_endpoint=flink-jobserver:8099",
            "--environment_config=localhost:50000",
        ),
    )
    tasks = spec["root"]["dag"]["tasks"]
    assert "latest_pushed_model" not in tasks
    assert "baseline_model" not in tasks["Evaluator"]["inputs"].get("artifacts", {})
    for task in tasks:
        args = executor_of(spec, task)["container"]["args"]
        assert {"--runner=PortableRunner", "--job_endpoint=flink-jobserver:8099"} <= set(args), task


def test_a_resolver_executor_is_refused():
    spec = {"deploymentSpec": {"executors": {"r": {"resolver": {}}, "c": {"container": {}}}}}
    assert unrunnable_executors(spec) == {"r": "resolver"}
    with pytest.raises(ValueError, match="resolver"):
        finish(spec, "gs://b/root", "small")


def test_cli_refuses_a_remote_profile_without_its_flags(tmp_path, capsys):
    error = refused(
        '{"network": "lenet"}', tmp_path / "pipeline.yaml", capsys, "--beam-profile", "dataflow"
    )
    assert "--project=..." in error
