"""Line text: cleaning, sentence windows, line-example TFRecords and the sentence sources."""

import logging
import os
from pathlib import Path

import nltk
import pytest
import tensorflow as tf

from data.errors import DatasetError
from data.features import GLYPH_SET_KEY, LENGTH_KEY, SEED_KEY, TEXT_KEY, TRAIN_SPLIT
from data.sentences import (
    SAMPLE_EVERY,
    SAMPLE_SENTENCES,
    load_sentences,
    read_line_examples,
    sentence_windows,
    to_line_text,
    write_line_examples,
)
from data.vocabulary import LINE_CHARACTERS

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
    'election produced "no evidence" that any irregularities took place.',
    "It's 10:30 -- a supercalifragilistic moment!",
    "",
    "Merger proposed",
]


@pytest.fixture
def no_nltk_data(tmp_path, monkeypatch):
    """NLTK sees only an empty directory, wherever the machine keeps its own nltk_data."""
    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    monkeypatch.setattr(nltk.data, "path", [])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Atlanta's  well-known\tcafé.", "Atlantas wellknown cafe"),
        ("  It's 10:30 --\n\na  moment!  ", "Its 1030 a moment"),
        ("!!! ... ?", ""),
        ("Plain text 42", "Plain text 42"),
    ],
)
def test_to_line_text_keeps_only_line_characters(text, expected):
    assert to_line_text(text) == expected


def test_windows_are_whole_words_within_max_length():
    joined = " " + " ".join(filter(None, map(to_line_text, SENTENCES))) + " "
    windows = sentence_windows(SENTENCES, max_length=12, count=300, seed=0)
    assert len(windows) == 300
    for window in windows:
        assert 0 < len(window) <= 12
        assert f" {window} " in joined  # starts at a word start and ends at a word end
        assert set(window) <= set(LINE_CHARACTERS)
    assert "supercalifragilistic" not in " ".join(windows)  # longer than max_length: skipped
    assert len(set(windows)) > 20 and max(map(len, windows)) > 8  # random starts and lengths


def test_windows_are_deterministic_per_seed():
    first = sentence_windows(SENTENCES, max_length=20, count=50, seed=1)
    assert sentence_windows(SENTENCES, max_length=20, count=50, seed=1) == first
    assert sentence_windows(SENTENCES, max_length=20, count=50, seed=2) != first


def test_windows_reject_bad_arguments_and_text_without_fitting_words():
    with pytest.raises(ValueError, match="max_length"):
        sentence_windows(SENTENCES, max_length=0, count=1, seed=0)
    with pytest.raises(ValueError, match="count"):
        sentence_windows(SENTENCES, max_length=10, count=-1, seed=0)
    with pytest.raises(DatasetError, match="max_length=3"):
        sentence_windows(["none fits here", "!!!"], max_length=3, count=1, seed=0)


def test_write_read_line_examples_round_trip(tmp_path):
    texts = sentence_windows(SENTENCES, max_length=16, count=10, seed=0)
    write_line_examples(texts, tmp_path, TRAIN_SPLIT, seed=0, num_shards=4)  # stale shards below
    paths = write_line_examples(texts, tmp_path, TRAIN_SPLIT, seed=7, num_shards=3)
    assert sorted((tmp_path / TRAIN_SPLIT).iterdir()) == paths
    assert [p.name for p in paths] == [f"data-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert all(p.read_bytes()[:2] == b"\x1f\x8b" for p in paths)
    read_texts, seeds = read_line_examples(tmp_path, TRAIN_SPLIT)
    assert read_texts == texts
    assert seeds.dtype == "int64" and len(set(seeds.tolist())) == len(texts)
    write_line_examples(texts, tmp_path / "again", TRAIN_SPLIT, seed=7)
    assert read_line_examples(tmp_path / "again", TRAIN_SPLIT)[1].tolist() == seeds.tolist()


def test_line_examples_hold_the_features_transform_reads(tmp_path):
    (path,) = write_line_examples(
        ["ab c"], tmp_path, TRAIN_SPLIT, seed=0, num_shards=1, glyph_set=1
    )
    record = next(iter(tf.data.TFRecordDataset(str(path), compression_type="GZIP")))
    features = tf.train.Example.FromString(record.numpy()).features.feature
    assert features[TEXT_KEY].bytes_list.value == [b"ab c"]
    assert features[LENGTH_KEY].int64_list.value == [4]
    assert features[GLYPH_SET_KEY].int64_list.value == [1]
    assert len(features[SEED_KEY].int64_list.value) == 1


def test_write_line_examples_rejects_uncleaned_text(tmp_path):
    with pytest.raises(ValueError, match=r"texts\[1\] = \"it's\".*to_line_text"):
        write_line_examples(["fine", "it's"], tmp_path, TRAIN_SPLIT, seed=0)


def test_read_line_examples_names_missing_split(tmp_path):
    with pytest.raises(DatasetError, match="no TFRecord shards"):
        read_line_examples(tmp_path, TRAIN_SPLIT)


def test_sample_sentences_ship_with_attribution(no_nltk_data):
    sentences = load_sentences("sample")
    assert len(sentences) > 2500 and not any(s.startswith("#") for s in sentences)
    header = SAMPLE_SENTENCES.read_text(encoding="utf-8").split("\n", 5)[:4]
    assert "redistribution permitted" in " ".join(header)
    assert SAMPLE_SENTENCES.stat().st_size < 400_000


def test_auto_falls_back_to_sample_with_warning(no_nltk_data, caplog):
    with caplog.at_level(logging.WARNING, logger="data.sentences"):
        assert load_sentences() == load_sentences("sample")
    assert "nltk.download('brown')" in caplog.text and str(SAMPLE_SENTENCES) in caplog.text


def test_brown_without_corpus_says_how_to_get_it(no_nltk_data):
    with pytest.raises(DatasetError, match=r"set NLTK_DATA.*nltk.download\('brown'\)"):
        load_sentences("brown")


def test_unknown_source_is_rejected():
    with pytest.raises(ValueError, match="'web'"):
        load_sentences("web")


@pytest.mark.real_data
def test_brown_from_nltk_data(monkeypatch):
    nltk_data = Path(os.environ.get("NLTK_DATA_DIR", REPO.parent / "shared" / "data" / "nltk_data"))
    if not (nltk_data / "corpora" / "brown").is_dir():
        pytest.skip(
            f"Brown corpus not found in {nltk_data} (set NLTK_DATA_DIR to an nltk_data directory)"
        )
    monkeypatch.setenv("NLTK_DATA", str(nltk_data))
    sentences = load_sentences("brown")
    assert len(sentences) > 50_000
    assert sentences[0].startswith(
        "The Fulton County Grand Jury said Friday an investigation of Atlanta's"
    )
    assert sentences[::SAMPLE_EVERY] == load_sentences("sample")  # the shipped sample is up to date
