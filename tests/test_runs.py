"""Tracked runs and experiment groups: a group of two tiny character runs and one bad config,
run by two workers at once on one pipeline root and metadata store; both runs recorded with their
group, listed, shown and compared, and the bad one summarised with its error."""

import json
import subprocess
import sys
import time
from os.path import commonprefix

import pytest

from training import prepare_experiments, run_group, runs
from training.outputs import RUN_TYPE, open_store
from training.runs import find_run, load_runs

GROUP = "tiny"
EXPERIMENTS = [
    {
        "network": "mlp",
        "network_args": {"layer_size": 32, "num_layers": 1},
        "train_args": {"epochs": 1},
    },
    {
        "network": "mlp",
        "network_args": {"layer_size": 64, "num_layers": 1},
        "train_args": {"epochs": 1},
    },
    {"network": "no_such_network"},
]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """(root, experiments file, the group runner's exit code and output)."""
    root = tmp_path_factory.mktemp("runs")
    path = root / "group.json"
    path.write_text(json.dumps({"experiment_group": GROUP, "experiments": EXPERIMENTS}))
    results = run_group.run_group(str(path), 2, str(root), ["--data-dir", "data/sample/emnist"])
    return root, path, results, run_group.summary(results, str(root))


def test_prepare_prints_one_command_per_experiment_with_its_group(group, capsys):
    _, path, *_ = group
    assert prepare_experiments.main([str(path), "--root", "r"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3
    assert all(
        line.startswith("python -m training.run_experiment '{") and line.endswith(" --root r")
        for line in printed
    )
    assert f'"experiment_group": "{GROUP}"' in printed[0] and '"layer_size": 32' in printed[0]


def test_concurrent_runs_are_both_recorded_with_their_group(group):
    root, _, results, _ = group
    assert [r["returncode"] for r in results] == [0, 0, 2]
    recorded = load_runs(str(root / "metadata.sqlite"))
    assert sorted(r.name for r in recorded) == sorted(r["run"] for r in results[:2])
    for run in recorded:
        assert (run.group, run.status) == (GROUP, "complete")
        assert {n.state for n in run.nodes.values()} <= {"COMPLETE", "CACHED"}
        assert run.metrics[()]["example_count"] == 620
        assert run.training["kept_epoch"] == 1 and len(run.training["history"]["val_accuracy"]) == 1
        assert run.blessed == 0 and run.validation[0].startswith("sparse_categorical_accuracy ")
    assert sorted(r.config["network_args"]["layer_size"] for r in recorded) == [32, 64]


def test_group_summary_lists_runs_best_first_and_the_failure_with_its_error(group):
    root, _, results, summary = group
    assert summary.startswith("2 of 3 runs finished")
    recorded = {r.name: r for r in load_runs(str(root / "metadata.sqlite"))}
    by_accuracy = sorted(
        recorded.values(), key=lambda r: -r.metrics[()]["sparse_categorical_accuracy"]
    )
    positions = [summary.index(run.name) for run in by_accuracy]
    assert positions == sorted(positions)
    failure = summary.split("1 failed:")[1]
    assert "error: network: unknown value 'no_such_network'" in failure
    assert results[2]["log"] in failure


def test_list_show_and_compare(group, capsys):
    root, _, results, _ = group
    first, second = results[0]["run"], results[1]["run"]
    assert runs.main(["--root", str(root), "list", "--group", GROUP]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].split()[:3] == ["id", "run", "group"]
    assert first in listing and second in listing
    assert runs.main(["--root", str(root), "list", "--group", "other"]) == 0
    assert first not in capsys.readouterr().out

    assert runs.main(["--root", str(root), "show", first[:-3]]) == 0  # a unique prefix
    shown = capsys.readouterr().out
    assert f"run {first} " in shown and f"group {GROUP}: complete" in shown
    assert "epochs (kept epoch 1 by val_accuracy)" in shown and "< lower bound 0.5" in shown
    assert '"layer_size": 32' in shown and "ImportExampleGen/examples/" in shown

    assert runs.main(["--root", str(root), "compare", first, second]) == 0
    compared = capsys.readouterr().out.splitlines()
    [layer_size] = [line.split() for line in compared if line.startswith("network_args.layer_size")]
    assert layer_size[1:] == ["32", "64"]
    assert any(line.startswith("Trainer time") for line in compared)

    assert runs.main(["--root", str(root), "show", "no-such-run"]) == 2
    assert "no such run" in capsys.readouterr().err


def test_a_run_is_found_by_id_name_or_unique_prefix(group):
    root, *_ = group
    recorded = load_runs(str(root / "metadata.sqlite"))
    run = recorded[0]
    assert find_run(recorded, str(run.id)) is run
    assert find_run(recorded, run.name) is run
    assert find_run(recorded, "latest") is run
    # A string prefix, e.g. "20261130-06", not an id (not commonpath: names are not paths).
    shared = commonprefix([r.name for r in recorded])  # noqa: RUF071
    assert len(recorded) > 1 and "-" in shared
    with pytest.raises(LookupError, match="ambiguous"):
        find_run(recorded, shared)


WRITER = """
import sys, time
from training.outputs import record_run
time.sleep(max(0, float(sys.argv[3]) - time.time()))  # all start together
for i in range(20):
    record_run(sys.argv[1], f"{sys.argv[2]}-{i}", {"status": "running", "started": 1.0})
    record_run(sys.argv[1], f"{sys.argv[2]}-{i}", {"status": "complete"})
"""


def test_concurrent_writers_on_a_fresh_store_all_land(tmp_path):
    """Four processes start writing to a store that does not exist yet, all at once: every
    write lands (MLMD waits and retries; opening the store is retried by training.outputs)."""
    path, start = str(tmp_path / "metadata.sqlite"), str(time.time() + 5)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, path, f"w{n}", start], stderr=subprocess.PIPE, text=True
        )
        for n in range(4)
    ]
    errors = [w.communicate(timeout=600)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0, 0], errors
    contexts = open_store(path).get_contexts_by_type(RUN_TYPE)
    assert len(contexts) == 80
    assert {c.custom_properties["status"].string_value for c in contexts} == {"complete"}
