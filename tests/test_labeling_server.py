"""Label Studio really running: project, page import, pre-annotation by the page recognizer,
the labeler's corrections posted through the API, the export downloaded through the API and
converted to PAGE-XML and line records.

The Label Studio virtualenv (.venv-labelstudio, with its migrated empty database) is built on
first use and kept, so reruns only pay for the server's start (about 30 s on 2 busy cores).
Without network on the first run the test is skipped, saying so.
"""

import shutil
import socket

import pytest
import requests
from test_recognize import BARS, export_rule_detector, page_png

from common import push_layout
from data.pagexml import read_pagexml
from labeling.client import LabelingError, LabelStudio
from labeling.export import export
from labeling.project import (
    download_export,
    ensure_project,
    import_pages,
    preannotate,
    recognizer_for,
    task_image_path,
)
from labeling.regions import page_lines
from labeling.server import CREDENTIAL_VARIABLES, credentials, ensure_venv, running

WIDTH, HEIGHT = 400, 300  # test_recognize's page
TRUTH = ["one", "two, corrected", "three"]
NETWORK_FAILURES = ("connect", "network", "dns", "resolve", "timed out", "failed to fetch")


@pytest.fixture(scope="module")
def label_studio_venv():
    try:
        return ensure_venv(progress=False)
    except LabelingError as e:
        if any(word in str(e).lower() for word in NETWORK_FAILURES):
            pytest.skip(f"Label Studio's virtualenv cannot be built without PyPI: {e}")
        raise


@pytest.fixture(scope="module")
def serving_base(tmp_path_factory):
    """The page recognizer's models: test_recognize's rule detector (its lines are where the
    page's bars are) and the contract tests' untrained line model."""
    from serving.contract_models import template_model

    base = tmp_path_factory.mktemp("pages_serving")
    export_rule_detector(base / push_layout.DETECTOR_MODEL / "1")
    shutil.copytree(template_model(), base / push_layout.LINES_MODEL / "1")
    return base


def test_label_export_convert_through_a_running_label_studio(
    label_studio_venv, serving_base, tmp_path
):
    root = tmp_path / "pages"
    batch = root / "batch1"
    batch.mkdir(parents=True)
    for name in ("page_1.png", "page 2.png"):
        (batch / name).write_bytes(page_png())  # 400 x 300, a dark bar per line (BARS)
    recognizer, version = recognizer_for(str(serving_base), None)
    assert version == "line_detector 1 + lines 1"

    with running(root, port=0, data_dir=tmp_path / "ls", progress=False) as server:
        client = server.client()
        project = ensure_project(client, "Test pages")
        assert ensure_project(client, "Test pages") == project
        tasks = import_pages(client, project, batch)
        assert len(import_pages(client, project, batch)) == len(tasks) == 2
        assert {task_image_path(t, batch).name for t in tasks} == {"page_1.png", "page 2.png"}
        served = requests.get(
            server.url + tasks[0]["data"]["image"],
            headers={"Authorization": f"Token {server.token}"},
            timeout=30,
        )
        assert served.content == task_image_path(tasks[0], batch).read_bytes()

        preannotate(client, project, tasks, batch, recognizer, version)
        preannotate(client, project, tasks, batch, recognizer, version)  # nothing left to do
        predictions = client.get("/api/predictions", project=project)
        assert sorted(p["task"] for p in predictions) == sorted(t["id"] for t in tasks)
        first = min(tasks, key=lambda t: t["id"])
        predicted = next(p for p in predictions if p["task"] == first["id"])
        lines, problems = page_lines(first["id"], predicted["result"], WIDTH, HEIGHT)
        assert problems == [] and len(lines) == len(BARS)
        for line, (top, bottom, left, right) in zip(lines, BARS):  # each bar found, in order
            xs, ys = zip(*line.points)  # covering it, up to a detector cell (6 x 5 px)
            assert min(xs) <= left + 7 and max(xs) >= right - 7, (line.points, left, right)
            assert min(ys) <= top + 5 and max(ys) >= bottom - 5, (line.points, top, bottom)

        # The labeler corrects the pre-annotation of the first page: types the three lines'
        # text, and adds a line the detector missed, as a box.
        result = [
            {**r, "value": {**r["value"], "text": [TRUTH[i // 2]]}} if "text" in r["value"] else r
            for i, r in enumerate(predicted["result"])
        ]
        box = {"x": 12.5, "y": 85.0, "width": 75.0, "height": 10.0, "rotation": 0}
        common = {"id": "box1", "to_name": "image", "original_width": WIDTH}
        common |= {"original_height": HEIGHT, "image_rotation": 0}
        result += [
            {**common, "type": "rectanglelabels", "from_name": "line_box"}
            | {"value": {**box, "rectanglelabels": ["line"]}},
            {**common, "type": "textarea", "from_name": "transcription"}
            | {"value": {**box, "text": ["four"]}},
        ]
        client.post(f"/api/tasks/{first['id']}/annotations", {"result": result})

        exported = tmp_path / "export.json"
        assert download_export(client, project, exported) == 1

    summary, report = export(exported, batch, tmp_path / "out", progress=False)
    assert (summary.pages, summary.lines, summary.problems) == (1, 4, [])
    read = list(read_pagexml(tmp_path / "out" / "pages"))
    assert [r.text for r in read] == [*TRUTH, "four"]
    assert read[3].image.shape == (round(0.95 * HEIGHT) - round(0.85 * HEIGHT) + 1, 301)
    assert sum(split["lines"] for split in report["splits"].values()) == 4
    assert server.process.poll() is not None  # stopped on leaving the block


def test_credentials_come_from_the_environment_else_are_generated_once(tmp_path, monkeypatch):
    for variable in CREDENTIAL_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    first = credentials(tmp_path / "ls")
    assert credentials(tmp_path / "ls") == first  # kept in credentials.json
    assert (tmp_path / "ls" / "credentials.json").stat().st_mode & 0o077 == 0
    assert len(first["token"]) == 40 and first["password"] != first["token"]
    monkeypatch.setenv("LABEL_STUDIO_USER_TOKEN", "from-the-environment")
    assert credentials(tmp_path / "ls") == {**first, "token": "from-the-environment"}


def test_a_port_in_use_and_an_unreachable_server_are_clear_errors(label_studio_venv, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LabelingError, match=f"port {port} on 127.0.0.1 is in use"):
            with running(tmp_path, port=port, data_dir=tmp_path / "ls", progress=False):
                pass
    with pytest.raises(LabelingError, match="cannot reach Label Studio at http://127.0.0.1:9"):
        LabelStudio("http://127.0.0.1:9", "token").get("/api/projects")
