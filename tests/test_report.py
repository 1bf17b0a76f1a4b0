"""The TFMA report of a run against a baseline run, rendered in a real headless Chromium (the
web page test's Browser): its sections and the validation failure are there and every figure
loads; a full-page screenshot is saved next to the test's tmp_path (see the test output)."""

import json
import re

import pytest
from report_fixtures import IMAGES_LOADED, open_page

from evaluation import report
from training import run_experiment

CONFIG = {"network": "mlp", "network_args": {"num_layers": 1}, "train_args": {"epochs": 2}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two tiny character runs on one root: (root, [run ids])."""
    root = tmp_path_factory.mktemp("report")
    ids = []
    for layer_size in (16, 64):
        config = {**CONFIG, "network_args": {"num_layers": 1, "layer_size": layer_size}}
        args = run_experiment.parse_args(
            [json.dumps(config), "--root", str(root), "--data-dir", "data/sample/emnist"]
        )
        ids.append(run_experiment.run(args)["run_id"])
    return root, ids


def test_substitutions_align_by_minimal_edits():
    assert report.substitutions("hello", "hallo") == [("e", "a")]
    assert report.substitutions("abcd", "xbd") == [("a", "x")]  # c deleted, not substituted
    assert report.substitutions("", "abc") == []


def test_report_renders_with_its_figures(root, tmp_path):
    root, (first, second) = root
    out = tmp_path / "report"
    assert report.main([second, "--baseline", first, "--root", str(root), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    for heading in (
        "Metrics overall",
        "Validation",
        "sparse_categorical_accuracy by character",
        "Training curves",
        "Confusion matrix (620 eval examples)",
        "Worst-read examples",
    ):
        assert f"{heading}</h2>" in page, heading
    assert page.count("NOT blessed") == 2 and "&lt; lower bound 0.5 (short by" in page
    assert first in page and second in page
    names = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert sorted(names) == sorted(p.name for p in out.glob("*.png")) and len(names) == 4

    browser = open_page(out / "report.html", tmp_path)
    try:
        loaded = browser.evaluate(IMAGES_LOADED)
        height = browser.evaluate("document.documentElement.scrollHeight")
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        screenshot = browser.screenshot(tmp_path / "report.png")
        print(f"screenshot: {screenshot}")
    finally:
        browser.close()
    assert sorted(loaded) == sorted([name, True] for name in names)
    assert height > 2000 and screenshot.stat().st_size > 50_000
