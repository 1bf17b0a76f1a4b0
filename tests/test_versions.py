"""Dataset versions (data.versions): a prepared dataset is a span with a metadata file; the same
inputs give the same span, which the pipeline's ImportExampleGen reads from cache; changed inputs
give the next span, which the next run reads; folders prepared before versions become span 1."""

import json

import numpy as np
import pytest
from line_fixtures import write_text_pages

from data import versions
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.tfrecords import write_split
from pipeline.pipeline import import_example_gen
from trainer.config import ExperimentConfig
from trainer.datasets import DATASETS

PAGES = {"dataset": "PageXmlLinesDataset", "model": "LineModelCtc"}


def _write(out, count: int) -> None:
    for split in (TRAIN_SPLIT, EVAL_SPLIT):
        images = np.zeros((count, 4, 4), np.uint8)
        write_split(images, np.zeros(count, np.int64), ["a"], out, split, num_shards=2)


def _prepare(base, source, count: int):
    with versions.versioned_dir(
        base,
        ["test", str(source)],
        dataset="Test",
        source=str(source),
        inputs=versions.file_digests(source),
        args={"count": count},
    ) as (out, partial):
        if partial:
            _write(partial, count)
    return out, partial is not None


def test_same_inputs_same_span_changed_inputs_next_span(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.txt").write_text("one")
    first, written = _prepare(tmp_path / "examples", source, 3)
    assert written and first.name == "span-1"
    metadata = versions.read_metadata(first)
    assert metadata["span"] == 1 and metadata["dataset"] == "Test"
    assert metadata["counts"] == {EVAL_SPLIT: 3, TRAIN_SPLIT: 3}
    assert metadata["args"] == {"count": 3} and metadata["source"] == str(source)
    # sha256("one")
    assert metadata["input_sha256"] == {
        "a.txt": "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"
    }
    assert _prepare(tmp_path / "examples", source, 3) == (first, False)

    (source / "a.txt").write_text("two")
    second, written = _prepare(tmp_path / "examples", source, 3)
    assert written and second == first.with_name("span-2")
    assert versions.spans(first.parent) == [1, 2]
    assert versions.read_metadata(second)["input_sha256"]["a.txt"] != metadata["input_sha256"]
    assert versions.read_metadata(first) == metadata  # a span is never rewritten


def test_a_failed_preparation_leaves_no_span(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("x")
    with pytest.raises(RuntimeError):
        with versions.versioned_dir(
            tmp_path, ["t"], dataset="T", source="s", inputs={}, args={}
        ) as (_, partial):
            (partial / "half").write_text("")
            raise RuntimeError("conversion failed")
    series = versions.series_dir(tmp_path, ["t"])
    assert versions.spans(series) == [] and list(series.iterdir()) == []
    assert _prepare(tmp_path, source, 1)[0].name == "span-1"


def test_a_folder_prepared_before_versions_becomes_span_1(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("x")
    series = versions.series_dir(tmp_path / "examples", ["test", str(source)])
    _write(series, 2)
    (series / versions.COMPLETE_MARKER).write_text("[]")
    out, written = _prepare(tmp_path / "examples", source, 2)
    assert (out, written) == (series / "span-1", False)
    assert versions.read_metadata(out)["counts"] == {EVAL_SPLIT: 2, TRAIN_SPLIT: 2}
    assert "migrated" in versions.read_metadata(out)
    assert sorted(p.name for p in series.iterdir()) == ["span-1"]


def test_example_input_reads_a_span_through_its_series():
    assert versions.example_input("/x/examples/abc/span-12") == (
        "/x/examples/abc",
        "span-{SPAN}/",
        12,
    )
    assert versions.example_input("gs://bucket/emnist") == ("gs://bucket/emnist", "", None)


def _example_gen_run(tmp_path, examples_dir):
    """Runs the pipeline's own ImportExampleGen alone; returns its NodeRun."""
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
    from tfx.orchestration.metadata import sqlite_metadata_connection_config

    from training.outputs import latest_run

    metadata = str(tmp_path / "metadata.sqlite")
    BeamDagRunner().run(
        tfx_pipeline.Pipeline(
            pipeline_name="versions",
            pipeline_root=str(tmp_path / "root"),
            components=[import_example_gen(str(examples_dir))],
            enable_cache=True,
            metadata_connection_config=sqlite_metadata_connection_config(metadata),
            beam_pipeline_args=["--runner=FnApiRunner"],
        )
    )
    return latest_run(metadata)["ImportExampleGen"]


def test_a_pipeline_reads_the_prepared_span_cached_until_its_inputs_change(tmp_path):
    from training.outputs import custom_property

    pages = write_text_pages(tmp_path / "pages", "pagexml")
    dataset = DATASETS["PageXmlLinesDataset"]
    config = ExperimentConfig.from_dict(
        {**PAGES, "dataset_args": {"path": str(pages), "eval_fraction": 0.25}}
    )
    work = str(tmp_path / "work")
    first, _ = dataset.prepare(config, None, work)
    assert first.name == "span-1"
    metadata = json.loads((first / "metadata.json").read_text())
    assert metadata["dataset"] == "PageXmlLinesDataset" and metadata["span"] == 1
    assert set(metadata["input_sha256"]) == {p.name for p in pages.iterdir()}
    assert sum(metadata["counts"].values()) == sum(s["lines"] for s in metadata["splits"].values())

    run = _example_gen_run(tmp_path, first)
    examples = run.outputs["examples"][0]
    assert run.state == "COMPLETE" and custom_property(examples, "span") == 1

    assert dataset.prepare(config, None, work)[0] == first
    again = _example_gen_run(tmp_path, first)
    assert again.state == "CACHED" and again.outputs["examples"][0].id == examples.id

    page = next(pages.glob("*.xml"))
    page.write_text(page.read_text().replace("</Unicode>", " again</Unicode>", 1))
    second, _ = dataset.prepare(config, None, work)
    assert second == first.with_name("span-2")
    changed = _example_gen_run(tmp_path, second)
    assert changed.state == "COMPLETE"
    assert custom_property(changed.outputs["examples"][0], "span") == 2
