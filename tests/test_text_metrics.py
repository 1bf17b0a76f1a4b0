"""Edit distance and the pooled error rates on strings worked out by hand."""

import math

import pytest

from data.vocabulary import LINE_CHARACTERS, PAD_INDEX, SPACE_INDEX
from evaluation.text_metrics import (
    character_error_rate,
    edit_distance,
    error_rate,
    exact_match_rate,
    labels_to_text,
    word_error_rate,
)


@pytest.mark.parametrize(
    "a, b, distance",
    [
        ("kitten", "sitting", 3),
        ("", "", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("flaw", "lawn", 2),
        ("same", "same", 0),
        (["the", "cat"], ["the", "hat", "sat"], 2),
    ],
)
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


def test_character_error_rate_is_pooled_over_lines():
    assert character_error_rate(["kitten"], ["sitting"]) == 3 / 6
    # (3 + 0) edits over (6 + 4) reference characters, not the mean of 0.5 and 0.
    assert character_error_rate(["kitten", "same"], ["sitting", "same"]) == 3 / 10


def test_word_error_rate():
    references = ["the cat sat on the mat", "hello world"]
    hypotheses = ["the cat sit on mat", "hello  world "]
    # one substitution and one deletion over 6 + 2 words; extra spaces do not make words
    assert word_error_rate(references, hypotheses) == 2 / 8


def test_empty_references():
    assert character_error_rate([""], [""]) == 0.0
    assert word_error_rate([" "], [""]) == 0.0
    assert math.isinf(character_error_rate([""], ["a"]))
    assert math.isinf(word_error_rate([""], ["a b"]))
    # an empty line among others just adds its insertions to the pool
    assert character_error_rate(["", "abcd"], ["x", "abcd"]) == 1 / 4
    assert error_rate(0, 0) == 0.0


def test_exact_match_rate():
    assert exact_match_rate(["a b", "c", ""], ["a b", "c ", ""]) == 2 / 3
    with pytest.raises(ValueError, match="no lines"):
        exact_match_rate([], [])


def test_lines_must_pair_up():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        character_error_rate(["a", "b"], ["a"])


def test_labels_to_text_drops_padding():
    a, b = LINE_CHARACTERS.index("a"), LINE_CHARACTERS.index("B")
    assert labels_to_text([a, SPACE_INDEX, b, PAD_INDEX, PAD_INDEX]) == "a B"
    assert labels_to_text([a, b, -1, -1]) == "aB"
    assert labels_to_text([PAD_INDEX, -1]) == ""
    assert labels_to_text([]) == ""


@pytest.mark.parametrize("index", [-2, PAD_INDEX + 1])
def test_labels_to_text_refuses_non_classes(index):
    with pytest.raises(ValueError, match=f"class index {index}"):
        labels_to_text([0, index])
