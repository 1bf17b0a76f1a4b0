"""CTC and per-position decoding on hand-built probabilities, eagerly and in a serving graph."""

import numpy as np
import pytest
import tensorflow as tf

from data.vocabulary import LINE_CHARACTERS, NUM_LINE_CLASSES, PAD_INDEX
from trainer.decoding import (
    ctc_character_confidences,
    ctc_decode,
    indices_to_text,
    per_position_decode,
)

BLANK = PAD_INDEX


def idx(character: str) -> int:
    return LINE_CHARACTERS.index(character)


def peaked(steps: str, top: float = 0.9) -> np.ndarray:
    """[1, T, 64] probabilities whose top class at step t is steps[t] ("_" = blank/padding)."""
    probabilities = np.full((len(steps), NUM_LINE_CLASSES), (1 - top) / (NUM_LINE_CLASSES - 1))
    for t, step in enumerate(steps):
        probabilities[t, BLANK if step == "_" else idx(step)] = top
    return probabilities[np.newaxis].astype(np.float32)


def texts(indices) -> list:
    return [t.decode() for t in indices_to_text(indices).numpy()]


@pytest.mark.parametrize("strategy", ["greedy", "beam_search"])
@pytest.mark.parametrize(
    "steps, text",
    [
        ("hheel_llo__", "hello"),  # repeats collapse; a blank keeps "ll" apart
        ("hel_lo", "hello"),
        ("hello", "helo"),  # without a blank between them, repeated frames are one "l"
        ("a a", "a a"),
        ("______", ""),
        ("0_0", "00"),  # class 0 is a character, not the blank
    ],
)
def test_ctc_decoding(strategy, steps, text):
    decoded, confidence = ctc_decode(peaked(steps), strategy=strategy)
    assert decoded.dtype == tf.int64 and decoded.shape == (1, len(steps))
    assert texts(decoded) == [text]
    assert np.all(decoded.numpy()[0, len(text) :] == -1)
    assert 0 < confidence.numpy()[0] <= 1


def test_confidence_is_the_weakest_step_whatever_the_length():
    short, long = peaked("ab_", top=0.9), peaked("ab_" * 20, top=0.9)
    long[0, 31, :] = 0.0
    long[0, 31, [idx("a"), idx("b")]] = [0.55, 0.45]  # one doubtful step in a long line
    confidences = [ctc_decode(p)[1].numpy()[0] for p in (short, peaked("ab_" * 20, top=0.9), long)]
    np.testing.assert_allclose(confidences, [0.9, 0.9, 0.55], rtol=1e-5)


def smeared(probabilities: np.ndarray, steps: list, second: str) -> np.ndarray:
    """The same line with its top class at `steps` sharing its mass with `second`."""
    smeared = probabilities.copy()
    for t in steps:
        top = smeared[0, t].argmax()
        smeared[0, t, [top, idx(second)]] = [0.5, 0.4]
    return smeared


def test_a_clean_line_scores_above_the_same_line_smeared():
    clean = peaked("tthe__qquick__bbrown__ffox", top=0.95)
    dirty = smeared(clean, [8, 9], "o")
    assert texts(ctc_decode(dirty)[0]) == texts(ctc_decode(clean)[0])  # read the same
    assert ctc_decode(clean)[1].numpy()[0] > ctc_decode(dirty)[1].numpy()[0]
    clean_chars = ctc_character_confidences(clean).numpy()[0]
    dirty_chars = ctc_character_confidences(dirty).numpy()[0]
    assert (clean_chars[:16] > 0.9).all() and (clean_chars[16:] == -1).all()
    # only the smeared characters (the "u" and "i" of "quick") lose confidence
    assert [i for i in range(16) if dirty_chars[i] < clean_chars[i]] == [4, 5]


def test_character_confidences_are_the_peak_of_each_run():
    probabilities = peaked("hheel_llo__", top=0.9)
    probabilities[0, 1, :] = 0.0
    probabilities[0, 1, idx("h")] = 0.99  # the second step of the "h" run is its peak
    chars = ctc_character_confidences(probabilities).numpy()[0]
    np.testing.assert_allclose(chars[:5], [0.99, 0.9, 0.9, 0.9, 0.9], rtol=1e-5)
    assert (chars[5:] == -1).all()


def test_beam_search_sums_alignments_greedy_misses():
    # Each step: "a" 0.4, blank 0.6. Greedy's best path is blank-blank (0.36, text ""), but
    # "a" has aa + a_ + _a = 0.16 + 0.24 + 0.24 = 0.64.
    probabilities = np.zeros((1, 2, NUM_LINE_CLASSES), np.float32)
    probabilities[0, :, idx("a")] = 0.4
    probabilities[0, :, BLANK] = 0.6
    greedy, greedy_confidence = ctc_decode(probabilities, "greedy")
    beam, beam_confidence = ctc_decode(probabilities, "beam_search", beam_width=4)
    assert texts(greedy) == [""] and texts(beam) == ["a"]
    # Both report the weakest step of the posteriors they read.
    np.testing.assert_allclose([greedy_confidence.numpy(), beam_confidence.numpy()], [[0.6], [0.6]])


def test_unknown_strategy():
    with pytest.raises(ValueError, match="'best'"):
        ctc_decode(peaked("a"), strategy="best")


def test_per_position_stops_at_first_padding():
    probabilities = peaked("ab c_de_", top=0.8)
    probabilities[0, 6, :] = 0.01  # a doubtful position after the end does not count
    decoded, confidence, characters = per_position_decode(probabilities)
    assert decoded.numpy().tolist() == [[idx("a"), idx("b"), idx(" "), idx("c")] + [-1] * 4]
    assert texts(decoded) == ["ab c"]
    # five steps count: four characters and the padding that ends them
    np.testing.assert_allclose(confidence.numpy(), [0.8], rtol=1e-5)
    np.testing.assert_allclose(characters.numpy(), [[0.8] * 4 + [-1] * 4], rtol=1e-5)


def test_per_position_without_padding_and_empty():
    decoded, _, _ = per_position_decode(np.concatenate([peaked("abc"), peaked("_bc")]))
    assert texts(decoded) == ["abc", ""]


def test_indices_to_text_skips_padding_anywhere():
    indices = tf.constant([[idx("A"), -1, idx("z"), PAD_INDEX], [-1, -1, -1, -1]], tf.int64)
    assert texts(indices) == ["Az", ""]


def test_in_a_serving_graph():
    @tf.function(input_signature=[tf.TensorSpec([None, None, NUM_LINE_CLASSES], tf.float32)])
    def serve(probabilities):
        outputs = {}
        for name, (decoded, confidence) in {
            "greedy": ctc_decode(probabilities),
            "beam": ctc_decode(probabilities, "beam_search"),
            "position": per_position_decode(probabilities)[:2],
        }.items():
            outputs[f"{name}_text"] = indices_to_text(decoded)
            outputs[f"{name}_decoded"] = decoded
            outputs[f"{name}_confidence"] = confidence
        return outputs

    concrete = serve.get_concrete_function()
    assert all(isinstance(t, tf.Tensor) for t in concrete.structured_outputs.values())
    outputs = serve(tf.constant(np.concatenate([peaked("ab_b_"), peaked("c____")])))
    for name, expected in {
        "greedy": ["abb", "c"],
        "beam": ["abb", "c"],
        "position": ["ab", "c"],
    }.items():
        assert [t.decode() for t in outputs[f"{name}_text"].numpy()] == expected
        assert outputs[f"{name}_decoded"].shape == (2, 5)
        assert outputs[f"{name}_confidence"].shape == (2,)
