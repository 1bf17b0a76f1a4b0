"""The report of a LINE model run (evaluation.report) on a tiny synthetic-lines pipeline run: the
most frequent substitutions, CER by line length, the worst-read lines and the training curves are
there, and the page renders in headless Chromium with every figure loaded. The same run shows the
Trainer's sample predictions (trainer.sample_predictions) reaching the TensorBoard logdir of
`training.runs tensorboard`."""

import collections
import json
import os
import re

import pytest
from report_fixtures import IMAGES_LOADED, open_page

from evaluation import report
from training import run_experiment
from training.runs import find_run, load_runs, tensorboard_logdir

CONFIG = {
    "dataset": "EmnistLinesDataset",
    "model": "LineModelCtc",
    "network": "line_lstm_ctc",
    "dataset_args": {"max_length": 6, "num_train": 128, "num_eval": 24},
    "network_args": {"lstm_dim": 16, "conv_dim": 8},
    "train_args": {"epochs": 2, "batch_size": 32},
}


@pytest.fixture(scope="module")
def line_run(tmp_path_factory):
    """(root, run id) of one tiny CTC run on synthetic lines."""
    root = tmp_path_factory.mktemp("line_report")
    args = run_experiment.parse_args([json.dumps(CONFIG), "--root", str(root), "--max-cer", "1.5"])
    return root, run_experiment.run(args)["run_id"]


def test_line_report_has_substitutions_cer_by_length_worst_lines_and_curves(line_run, tmp_path):
    root, run_id = line_run
    out = tmp_path / "report"
    assert report.main([run_id, "--root", str(root), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    for heading in (
        "Metrics overall",
        "Validation",
        "cer by length",
        "Training curves",
        "Most frequent substitutions (24 eval lines)",
        "Worst-read examples",
    ):
        assert f"{heading}</h2>" in page, heading
    # The table and the dropped/added line count what the run's model reads from the eval split.
    run = find_run(load_runs(str(root / "metadata.sqlite")), run_id)
    rows = report.predictions(run, run.config)
    edits = collections.Counter(e for r in rows for e in report.edits(r["truth"], r["read"]))
    substituted = sum(n for (a, b), n in edits.items() if a and b)
    dropped = sum(n for (_, b), n in edits.items() if not b)
    table = re.search(r"Most frequent substitutions.*?</table>", page, re.S)[0]
    assert table.count("<tr>") == 1 + min(20, len([p for p in edits if all(p)]))
    assert f"Characters dropped {dropped}" in page
    assert substituted + dropped > 0  # two epochs on 128 lines: far from reading them all
    assert "val_cer" in page  # kept by the Evaluator's metric, named in the curves' caption
    names = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert sorted(names) == ["cer_by_length.png", "training_curves.png", "worst_examples.png"]
    assert sorted(names) == sorted(p.name for p in out.glob("*.png"))

    browser = open_page(out / "report.html", tmp_path)
    try:
        loaded = browser.evaluate(IMAGES_LOADED)
        sections = browser.evaluate("Array.from(document.querySelectorAll('h2')).length")
    finally:
        browser.close()
    assert sorted(loaded) == sorted([name, True] for name in names)
    assert sections == 6


def test_sample_predictions_reach_the_tensorboard_logdir(line_run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainer.sample_predictions import TAG

    root, run_id = line_run
    run = find_run(load_runs(str(root / "metadata.sqlite")), run_id)
    logdir = tensorboard_logdir([run], str(tmp_path / "tensorboard"))
    samples = os.path.join(logdir, run.name, "samples")
    events = EventAccumulator(samples, size_guidance={"tensors": 0}).Reload()
    assert [event.step for event in events.Tensors(TAG)] == [0, 1]  # one image per epoch
