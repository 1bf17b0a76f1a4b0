"""kubeflow.local_run runs a compiled spec task by task as KFP's backend would: ExecutorInputs
wired from upstream outputs, the pre-cache-check driver first, importers materialized, failures
named with their log. Small specs of plain Python steps check the wiring in seconds; the
character pipeline compiled by kubeflow.runner is then run end to end on the embedded sample."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from data.features import EVAL_SPLIT
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from kubeflow.local_run import LocalRunError, load_spec, main, run_spec
from kubeflow.runner import IMAGE_SCHEMA_DIR, compile_pipeline
from pipeline.tasks import SCHEMA_DIR
from trainer.config import ExperimentConfig

# One step program for every task: what it does is its second argument. Like TFX's entrypoint,
# it reports its output artifacts with the metadata it was given plus its own.
STEP = """
import json, pathlib, sys
message, mode = json.loads(sys.argv[1]), sys.argv[2]
output_file = pathlib.Path(message["outputs"]["outputFile"])
outputs = {k: v["artifacts"][0] for k, v in message["outputs"]["artifacts"].items()}
if mode == "fail":
    print("boom: the input is bad")
    sys.exit(3)
if mode == "driver":
    reported = {k: {"artifacts": [{"metadata": {"span": 7}}]} for k in outputs}
    output_file.write_text(json.dumps({"artifacts": reported}))
    sys.exit(0)
with open(pathlib.Path(sys.argv[3]), "a") as runs:
    runs.write(mode + "\\n")
for artifact in outputs.values():
    if mode != "lazy":
        pathlib.Path(artifact["uri"]).write_text(json.dumps(message))
reported = {
    k: {"artifacts": [{"uri": a["uri"], "metadata": {**a["metadata"], "written_by": mode}}]}
    for k, a in outputs.items()
}
output_file.write_text(json.dumps({"artifacts": reported}))
"""
TYPE = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}


def _container(tmp_path, mode: str, driver: bool = False) -> dict:
    container: dict = {
        "image": "unused",
        "command": ["python", str(tmp_path / "step.py")],
        "args": ["{{$}}", mode, str(tmp_path / "runs.txt")],
    }
    if driver:
        container["lifecycle"] = {"preCacheCheck": {**container, "args": ["{{$}}", "driver"]}}
    return {"container": container}


def _spec(tmp_path, first_mode: str = "make") -> dict:
    """import -> make (with a driver) -> use, as kubeflow.runner's YAML would hold them."""
    (tmp_path / "step.py").write_text(STEP)
    (tmp_path / "imported").write_text("data")
    outputs = {"outputDefinitions": {"artifacts": {"data": {"artifactType": TYPE}}}}
    return {
        "pipelineInfo": {"name": "tiny"},
        "components": {
            "imp": {"executorLabel": "imp_executor", **outputs},
            "make": {"executorLabel": "make_executor", **outputs},
            "use": {
                "executorLabel": "use_executor",
                "inputDefinitions": {"parameters": {"n": {"defaultValue": 5.0}}},
                **outputs,
            },
        },
        "deploymentSpec": {
            "executors": {
                "imp_executor": {
                    "importer": {
                        "artifactUri": {"constant": str(tmp_path / "imported")},
                        "typeSchema": TYPE,
                    }
                },
                "make_executor": _container(tmp_path, first_mode, driver=True),
                "use_executor": _container(tmp_path, "use"),
            }
        },
        "root": {
            "dag": {
                "tasks": {
                    "use": {
                        "componentRef": {"name": "use"},
                        "dependentTasks": ["make"],
                        "inputs": {
                            "artifacts": {
                                "made": {
                                    "taskOutputArtifact": {
                                        "producerTask": "make",
                                        "outputArtifactKey": "data",
                                    }
                                },
                                "given": {
                                    "taskOutputArtifact": {
                                        "producerTask": "imp",
                                        "outputArtifactKey": "data",
                                    }
                                },
                            },
                            "parameters": {
                                "schema": {
                                    "runtimeValue": {
                                        "constant": f"{IMAGE_SCHEMA_DIR}/emnist/schema.pbtxt"
                                    }
                                }
                            },
                        },
                    },
                    "make": {"componentRef": {"name": "make"}},
                    "imp": {"componentRef": {"name": "imp"}},
                }
            }
        },
    }


def _write(tmp_path, spec: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_tasks_get_upstream_outputs_the_driver_metadata_and_mapped_parameters(tmp_path):
    root = tmp_path / "root"
    runs = run_spec(
        load_spec(_write(tmp_path, _spec(tmp_path))), root, run_id="r1", echo=lambda _: None
    )
    assert [(r.name, r.status) for r in runs] == [
        ("imp", "imported"),
        ("make", "succeeded"),
        ("use", "succeeded"),
    ]
    used = json.loads(Path(runs[2].outputs["data"]["uri"]).read_text())
    made = used["inputs"]["artifacts"]["made"]["artifacts"][0]
    assert made["uri"] == str(root.resolve() / "tiny" / "r1" / "make" / "data")
    assert made["metadata"] == {"span": 7, "written_by": "make"}  # the driver's, via `make`
    assert made["type"] == TYPE
    assert used["inputs"]["artifacts"]["given"]["artifacts"][0]["uri"] == str(tmp_path / "imported")
    assert used["inputs"]["parameterValues"] == {
        "n": 5.0,
        "schema": f"{SCHEMA_DIR}/emnist/schema.pbtxt",
    }
    assert used["outputs"]["outputFile"] == str(
        root.resolve() / "tiny" / "r1" / "use" / "executor_output.json"
    )

    rerun = run_spec(
        load_spec(tmp_path / "spec.yaml"), root, "r1", only=("use",), echo=lambda _: None
    )
    assert [r.status for r in rerun] == ["imported", "reused", "succeeded"]
    assert (tmp_path / "runs.txt").read_text().split() == ["make", "use", "use"]


def test_a_failed_task_is_named_with_its_log_tail_and_stops_the_run(tmp_path, capsys):
    spec = _write(tmp_path, _spec(tmp_path, first_mode="fail"))
    with pytest.raises(SystemExit) as exited:
        main([str(spec), "--root", str(tmp_path / "root")])
    error = str(exited.value.code)
    assert error.startswith("error: task make failed: its executor exited with code 3")
    assert "boom: the input is bad" in error
    assert "[2/3] make ..." in capsys.readouterr().out
    assert not (tmp_path / "runs.txt").exists()  # `use` never ran


def test_an_output_not_written_is_an_error(tmp_path):
    spec = load_spec(_write(tmp_path, _spec(tmp_path, first_mode="lazy")))
    with pytest.raises(LocalRunError, match="task make: output data was not written"):
        run_spec(spec, tmp_path / "root", echo=lambda _: None)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s["root"]["dag"]["tasks"]["use"].update(triggerPolicy={"condition": "x"}),
            "task use: .'triggerPolicy'. are not supported",
        ),
        (
            lambda s: s["deploymentSpec"]["executors"]["use_executor"]["container"]["args"].append(
                "{{$.inputs.parameters['n']}}"
            ),
            "placeholders other than",
        ),
        (
            lambda s: s["deploymentSpec"]["executors"].update(use_executor={"resolver": {}}),
            "other than container/importer",
        ),
        (
            lambda s: s["root"]["dag"]["tasks"]["make"].update(dependentTasks=["use"]),
            "in a cycle",
        ),
        (
            lambda s: s["root"]["dag"]["tasks"]["use"]["dependentTasks"].append("ghost"),
            r"task use depends on tasks not in the spec: \['ghost'\]",
        ),
    ],
)
def test_what_it_cannot_run_is_refused_by_name(tmp_path, change, message):
    spec = _spec(tmp_path)
    change(spec)
    with pytest.raises(LocalRunError, match=message):
        run_spec(load_spec(_write(tmp_path, spec)), tmp_path / "root", echo=lambda _: None)


def test_bad_spec_files_and_options_are_refused(tmp_path):
    with pytest.raises(LocalRunError, match="missing.yaml: cannot read the spec"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "other.yaml").write_text("a: 1\n")
    with pytest.raises(LocalRunError, match="not a KFP pipeline spec"):
        load_spec(tmp_path / "other.yaml")
    spec = load_spec(_write(tmp_path, _spec(tmp_path)))
    with pytest.raises(LocalRunError, match=r"no task \['nope'\]"):
        run_spec(spec, tmp_path / "root", "r1", only=("nope",))
    with pytest.raises(LocalRunError, match="--only needs --run-id"):
        run_spec(spec, tmp_path / "root", only=("use",))


def test_the_compiled_character_pipeline_runs_locally_and_pushes_a_model_that_reads(
    tmp_path, capsys
):
    serving = tmp_path / "serving" / "characters"
    spec_file = compile_pipeline(
        ExperimentConfig.from_dict({"network": "lenet", "train_args": {"epochs": 2}}),
        str(tmp_path / "characters.yaml"),
        pipeline_root=str(tmp_path / "root"),
        examples_dir=str(SAMPLE_DIR),
        serving_model_dir=str(serving),
        min_accuracy=0.1,
    )
    spec = load_spec(spec_file)
    runs = run_spec(spec, tmp_path / "root")
    assert {r.name for r in runs} == set(spec["root"]["dag"]["tasks"])
    assert all(r.status == "succeeded" for r in runs)
    printed = capsys.readouterr().out
    assert "Evaluator: succeeded" in printed and "(blessing: blessed 1)" in printed
    assert "(pushed_model: pushed 1" in printed
    [version] = [p for p in serving.iterdir() if p.name.isdigit()]
    assert (version / "saved_model.pb").exists()

    from serving.predictors import CharacterPredictor

    images, _, characters = read_split(SAMPLE_DIR, EVAL_SPLIT)
    predictions = CharacterPredictor(serving).predict_batch(list(images[:100]))
    charset = set(characters)
    assert all(text in charset for text, _ in predictions)
    accuracy = np.mean([text == truth for (text, _), truth in zip(predictions, characters[:100])])
    assert accuracy > 0.08, accuracy  # chance is 1/62
