"""labeling.export on recorded Label Studio exports (tests/fixtures/labeling/*.json).

The fixtures follow Label Studio 1.23's full JSON export: per task its `data.image` local-files
URL and its annotations, whose results give shapes in percent of original_width x
original_height and each per-region transcription as a separate `textarea` result with the
shape's id. The page images are drawn here: 400 x 300 px, a dark stroke under every line.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.errors import DatasetError
from data.line_crops import LineRecord
from data.lines import read_line_images
from data.pagexml import read_pagexml
from labeling.export import export, main, read_export
from labeling.regions import page_lines, prediction_results

FIXTURES = Path(__file__).parent / "fixtures" / "labeling"
WIDTH, HEIGHT = 400, 300


@pytest.fixture
def pages(tmp_path) -> Path:
    folder = tmp_path / "batch1"
    folder.mkdir()
    for name in ("page_a.png", "page b.png", "page_c.png", "page_d.png"):
        page = np.full((HEIGHT, WIDTH), 235, np.uint8)
        for top in range(20, HEIGHT, 30):  # ink in every band a line may cover
            page[top : top + 6, 30:370] = 20
        Image.fromarray(page).save(folder / name)
    return folder


def lines_by_page(folder: Path) -> dict:
    read: dict[str, list] = {}
    for record in read_pagexml(folder):
        assert isinstance(record, LineRecord), record
        read.setdefault(record.page, []).append(record)
    return read


def test_exports_each_labeled_page_to_pagexml_and_line_records(pages, tmp_path):
    out = tmp_path / "out"
    summary, report = export(FIXTURES / "export_good.json", pages, out, progress=False)

    assert (summary.pages, summary.lines, summary.problems) == (2, 3, [])
    assert summary.unlabeled_tasks == 2  # one never labeled, one only skipped (cancelled)
    assert sorted(p.name for p in (out / "pages").iterdir()) == [
        "label-studio-export.json",
        "page b.png",
        "page b.xml",
        "page_a.png",
        "page_a.xml",
    ]
    assert (out / "pages" / "label-studio-export.json").read_bytes() == (
        FIXTURES / "export_good.json"
    ).read_bytes()
    read = lines_by_page(out / "pages")
    assert [r.text for r in read["page_a"]] == ["first line", "Second line"]
    # percent -> pixels: the polygon (10, 10)-(90, 30) % of 400 x 300 spans x 40..360, y 30..90
    assert read["page_a"][0].image.shape == (90 - 30 + 1, 360 - 40 + 1)
    assert read["page_a"][1].image.shape == (round(0.6 * HEIGHT) - round(0.4 * HEIGHT) + 1, 321)
    # the ground-truth annotation wins over a later one
    assert [r.text for r in read["page b"]] == ["ground truth"]

    assert report["splits"]["train"]["lines"] + report["splits"]["eval"]["lines"] == 3
    texts = [
        text for split in ("train", "eval") for text in read_line_images(out / "lines", split)[1]
    ]
    assert sorted(texts) == ["Second line", "first line", "ground truth"]
    metadata = json.loads((out / "lines" / "metadata.json").read_text())
    assert metadata["dataset"] == "LabelStudioExport"
    assert metadata["label_studio"]["problems"] == 0
    assert {"pages/label-studio-export.json", "pages/page_a.xml", "pages/page b.png"} <= set(
        metadata["input_sha256"]
    )
    assert json.loads((out / "problems.json").read_text()) == []


def test_reports_each_bad_region_and_page_and_exports_the_rest(pages, tmp_path):
    out = tmp_path / "out"
    summary, _ = export(FIXTURES / "export_problems.json", pages, out, progress=False)

    found = {(p.task, p.region): p.message for p in summary.problems}
    assert set(found) == {
        (11, "notext"),
        (11, "orphan"),
        (11, "tilted"),
        (11, "blank"),
        (12, ""),
        (13, "s1"),
        (13, ""),
    }
    assert found[(11, "notext")] == "region without text"
    assert found[(11, "blank")] == "region without text"
    assert found[(11, "orphan")] == "text without a region: 'words with no shape'"
    assert found[(11, "tilted")] == "rotated rectangle (12.5 degrees)"
    assert found[(12, "")] == f"image page_gone.png no longer exists in {pages}"
    assert "labeled on a 800 x 600 image, but the image is 400 x 300" in found[(13, "s1")]
    assert found[(13, "")] == "no usable lines on page b.png"
    assert [r.text for r in read_pagexml(out / "pages")] == ["the good line"]
    assert {
        (p["task"], p["region"]) for p in json.loads((out / "problems.json").read_text())
    } == set(found)


def test_cli_prints_problems_naming_task_and_region(pages, tmp_path, capsys):
    code = main(
        [
            str(FIXTURES / "export_problems.json"),
            "--pages",
            str(pages),
            "--out",
            str(tmp_path / "o"),
        ]
        + ["--no-progress"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "exported 1 pages, 1 lines" in printed
    assert "task 11 region tilted: rotated rectangle (12.5 degrees)" in printed
    assert "task 12: image page_gone.png no longer exists" in printed


def test_refuses_a_json_min_export_and_an_export_with_nothing_usable(pages, tmp_path, capsys):
    with pytest.raises(DatasetError, match="not Label Studio's full JSON export"):
        read_export(FIXTURES / "export_json_min.json")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(json.loads((FIXTURES / "export_good.json").read_text())[2:]))
    with pytest.raises(DatasetError, match="nothing to export .* 2 unlabeled tasks"):
        export(empty, pages, tmp_path / "out", progress=False)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"data": ')
    code = main([str(broken), "--pages", str(pages), "--out", str(tmp_path / "o2")])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"error: export {broken} is not JSON")


def test_a_rerun_replaces_the_previous_export_and_a_foreign_folder_is_refused(pages, tmp_path):
    out = tmp_path / "out"
    export(FIXTURES / "export_good.json", pages, out, progress=False)
    export(FIXTURES / "export_problems.json", pages, out, progress=False)
    assert sorted(p.name for p in (out / "pages").iterdir()) == [
        "label-studio-export.json",
        "page_a.png",
        "page_a.xml",
    ]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty and not a previous export"):
        export(FIXTURES / "export_good.json", pages, foreign, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_predictions_read_back_as_the_same_lines():
    polygons = [[(40, 30), (360, 30), (360, 90), (40, 90)], [(12, 200), (390, 210), (20, 260)]]
    results = prediction_results(list(zip(polygons[::-1], ["second", "first"])), WIDTH, HEIGHT)
    lines, problems = page_lines(7, results, WIDTH, HEIGHT)
    assert problems == []
    assert [(line.points, line.text) for line in lines] == [
        (polygons[0], "first"),
        (polygons[1], "second"),
    ]
