"""The charset mapping, the page split and `python -m data.lines` end to end."""

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from line_fixtures import INK, page_image, write_iam, write_pagexml
from PIL import Image

from data.charset import CharsetCounts, to_line_charset
from data.features import (
    DOCUMENT_KEY,
    EVAL_SPLIT,
    IMAGE_KEY,
    PAGE_KEY,
    SOURCE_KEY,
    TEXT_KEY,
    TRAIN_SPLIT,
    WRITER_KEY,
)
from data.lines import choose_eval_pages, convert, main, read_page_list
from data.tfrecords import read_examples
from data.vocabulary import LINE_CHARACTERS

REPO = Path(__file__).resolve().parents[1]


def test_charset_mapping_and_counts():
    counts = CharsetCounts()
    text = to_line_charset("  “Café” – it’s\tten [sic]\n£5 = ∞  ", counts)
    assert text == '"Cafe" - it\'s ten (sic) 5'
    assert set(text) <= set(LINE_CHARACTERS)
    assert counts.mapped == {
        '“->"': 1,
        '”->"': 1,
        "é->e": 1,
        "–->-": 1,
        "’->'": 1,
        "[->(": 1,
        "]->)": 1,
    }
    assert counts.dropped == {"£": 1, "=": 1, "∞": 1}
    assert to_line_charset("fine text, kept as is!") == "fine text, kept as is!"
    assert to_line_charset("  £ ", counts) == "" and counts.dropped["£"] == 2


def test_eval_pages_split_is_deterministic_disjoint_and_honours_the_list():
    pages = [f"p{i:03d}" for i in range(100)]
    first, again, other = (choose_eval_pages(pages, 0.1, seed) for seed in (0, 0, 1))
    assert first == again and first != other and len(first) == 10 and first <= set(pages)
    forced = {"p007", "p042", "nonexistent"}
    chosen = choose_eval_pages(pages, 0.1, 0, forced)
    assert {"p007", "p042"} <= chosen and "nonexistent" not in chosen and len(chosen) == 10
    assert choose_eval_pages(pages, 0.0, 0, forced) == {"p007", "p042"}


def write_pages(folder: Path, count: int = 10):
    """`count` pages with two lines each (page i's texts: 'page i a', 'page i b') and one with empty text."""
    for i in range(count):
        name = f"page {i} (x)"
        page_image(folder / f"{name}.png", bars=[(10, 10, 60, 30), (10, 50, 90, 70)])
        write_pagexml(
            folder / f"{name}.xml",
            f"{name}.png",
            regions=[
                (
                    "r",
                    [
                        ("l1", "10,10 59,10 59,29 10,29", f"page {i} a"),
                        ("l2", "10,50 89,50 89,69 10,69", f"page {i} b’"),
                        ("l3", "10,90 50,90 50,100", "  " if i == 0 else "£"),
                    ],
                )
            ],
        )


def read_split(out: Path, split: str):
    return [
        {
            key: f[key].bytes_list.value[0]
            for key in (IMAGE_KEY, TEXT_KEY, SOURCE_KEY, DOCUMENT_KEY, PAGE_KEY, WRITER_KEY)
        }
        for f in read_examples(out, split, "lines")
    ]


def test_cli_end_to_end(tmp_path, capsys):
    write_pages(tmp_path / "src")
    (tmp_path / "eval.txt").write_text("# must be eval\npage 3 (x)\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "--format",
                "pagexml",
                "--source",
                str(tmp_path / "src"),
                "--out",
                str(out),
                "--eval-fraction",
                "0.2",
                "--eval-pages",
                str(tmp_path / "eval.txt"),
                "--num-shards",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    report = capsys.readouterr().out
    train, evaluation = read_split(out, TRAIN_SPLIT), read_split(out, EVAL_SPLIT)
    assert len(train) == 16 and len(evaluation) == 4 and len(list((out / "train").iterdir())) == 2
    train_pages, eval_pages = ({e[PAGE_KEY] for e in split} for split in (train, evaluation))
    assert not train_pages & eval_pages and b"page 3 (x)" in eval_pages and len(eval_pages) == 2
    example = evaluation[0]
    assert (
        example[SOURCE_KEY] == b"pagexml"
        and example[DOCUMENT_KEY] == b"src"
        and example[WRITER_KEY] == b""
    )
    assert {e[TEXT_KEY] for e in evaluation if e[PAGE_KEY] == b"page 3 (x)"} == {
        b"page 3 a",
        b"page 3 b'",
    }
    assert all(
        e[TEXT_KEY].split()[1] == e[PAGE_KEY].split()[1] for e in train + evaluation
    )  # text matches page
    image = np.asarray(Image.open(io.BytesIO(example[IMAGE_KEY])))
    assert (
        image.ndim == 2
        and image.dtype == np.uint8
        and image.shape[0] == 20
        and (image == INK).all()
    )
    assert "train: 16 lines, 8 pages" in report and "eval: 4 lines, 2 pages" in report
    assert "10 empty text" in report and "page 0 (x) line 'l3'" in report
    assert (
        'mapped characters: 10 ("’->\'" 10)' in report and "dropped characters: 9 ('£' 9)" in report
    )
    metadata = json.loads((out / "metadata.json").read_text())
    assert (
        metadata["splits"][TRAIN_SPLIT]["lines"] == 16
        and metadata["args"]["seed"] == 0
        and metadata["created_at"]
    )
    assert (
        len(metadata["input_sha256"]) == 20
        and len(metadata["input_sha256"]["page 3 (x).xml"]) == 64
    )


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    write_pages(tmp_path / "src")
    pages = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        convert(
            "pagexml", tmp_path / "src", tmp_path / name, 0.3, seed, num_shards=1, progress=False
        )
        pages[name] = {e[PAGE_KEY] for e in read_split(tmp_path / name, EVAL_SPLIT)}
    assert pages["a"] == pages["b"] != pages["c"] and len(pages["a"]) == 3


def test_iam_uses_the_official_split(tmp_path):
    forms = {
        "a01-000u": ("000", [("a01-000u-00", (10, 10, 50, 20), "A|line", "A line")]),
        "b01-000": (
            "001",
            [
                ("b01-000-00", (10, 10, 50, 20), "Test|line", "Test line"),
                ("b01-000-01", (10, 40, 50, 20), "Not|listed", "Not listed"),
            ],
        ),
    }
    write_iam(
        tmp_path / "iam",
        forms,
        splits={"trainset.txt": ["a01-000u-00"], "testset.txt": ["b01-000-00"]},
    )
    report = convert("iam", tmp_path / "iam", tmp_path / "out", num_shards=1, progress=False)
    assert [e[TEXT_KEY] for e in read_split(tmp_path / "out", TRAIN_SPLIT)] == [b"A line"]
    (example,) = read_split(tmp_path / "out", EVAL_SPLIT)
    assert (example[TEXT_KEY], example[WRITER_KEY], example[SOURCE_KEY]) == (
        b"Test line",
        b"001",
        b"iam",
    )
    assert report["skipped"] == {"not in the task split": 1}


@pytest.mark.parametrize(
    "case, message",
    [
        ("no pages", "no page XML files (*.xml) in {src}"),
        ("malformed", "{src}/bad (1).xml: malformed XML: "),
        ("missing image", "{src}/p.xml: image 'p.png' not found"),
        ("only empty text", "no usable lines in {src} (1 skipped)"),
        ("not a folder", "source {src}/nope is not a directory"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, case, message):
    src = tmp_path / "src"
    src.mkdir()
    if case == "malformed":
        (src / "bad (1).xml").write_text("<PcGts><Page>")
    elif case in ("missing image", "only empty text"):
        write_pagexml(src / "p.xml", "p.png", regions=[("r", [("l", "0,0 9,0 9,9", "")])])
        if case == "only empty text":
            page_image(src / "p.png")
    source = src / "nope" if case == "not a folder" else src
    assert (
        main(
            [
                "--format",
                "pagexml",
                "--source",
                str(source),
                "--out",
                str(tmp_path / "out"),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: " + message.format(src=src)) and "Traceback" not in err


def test_hooker_eval_pages_file():
    pages = read_page_list(REPO / "data" / "hooker_eval_pages.txt")
    assert (
        len(pages) == 28
        and pages == sorted(set(pages))
        and all(p.startswith("JDH_") for p in pages)
    )


@pytest.mark.real_data
def test_real_hooker_pages(tmp_path):
    hooker = Path(os.environ.get("HOOKER_DIR", REPO.parent / "shared" / "data" / "htr" / "hooker"))
    if not hooker.is_dir():
        pytest.skip(f"the Hooker PAGE-XML pages are not at {hooker} (set HOOKER_DIR)")
    names = ["JDH_2_16_144_001", "JDH_2_16_186_001 (1)", "JDH_2_16_40_001"]
    for name in names:
        for suffix in (".xml", ".jpg"):
            shutil.copy(
                hooker / f"{name}{suffix}", tmp_path / f"{name}{suffix}"
            )  # a temporary copy
    report = convert(
        "pagexml",
        tmp_path,
        tmp_path / "out",
        0.0,
        0,
        eval_pages=[names[1]],
        num_shards=1,
        progress=False,
    )
    train, evaluation = (
        read_split(tmp_path / "out", TRAIN_SPLIT),
        read_split(tmp_path / "out", EVAL_SPLIT),
    )
    assert {e[PAGE_KEY] for e in evaluation} == {names[1].encode()} and len(train) > 20
    assert train[0][TEXT_KEY] == b"Dec 21/95"  # the first line of the first page in reading order
    assert (
        report["skipped"]["polygon outside the page"] > 0
    )  # JDH_2_16_40_001's lines beyond its image
    assert set(report["splits"][TRAIN_SPLIT]["charset"]) <= set(LINE_CHARACTERS)
