"""CTC and per-position decoding on hand-built probabilities, eagerly and in a serving graph."""

import numpy as np
import pytest
import tensorflow as tf

from data.vocabulary import LINE_CHARACTERS, NUM_LINE_CLASSES, PAD_INDEX
from trainer.decoding import ctc_decode, indices_to_text, per_position_decode

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


def test_greedy_confidence_is_best_path_probability():
    _, confidence = ctc_decode(peaked("ab_", top=0.9))
    np.testing.assert_allclose(confidence.numpy(), [0.9**3], rtol=1e-5)


def test_beam_search_sums_alignments_greedy_misses():
    # Each step: "a" 0.4, blank 0.6. Greedy's best path is blank-blank (0.36, text ""), but
    # "a" has aa + a_ + _a = 0.16 + 0.24 + 0.24 = 0.64.
    probabilities = np.zeros((1, 2, NUM_LINE_CLASSES), np.float32)
    probabilities[0, :, idx("a")] = 0.4
    probabilities[0, :, BLANK] = 0.6
    greedy, greedy_confidence = ctc_decode(probabilities, "greedy")
    beam, beam_confidence = ctc_decode(probabilities, "beam_search", beam_width=4)
    assert texts(greedy) == [""] and texts(beam) == ["a"]
    np.testing.assert_allclose(greedy_confidence.numpy(), [0.36], rtol=1e-4)
    np.testing.assert_allclose(beam_confidence.numpy(), [0.64], rtol=1e-4)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="'best'"):
        ctc_decode(peaked("a"), strategy="best")


def test_per_position_stops_at_first_padding():
    decoded, confidence = per_position_decode(peaked("ab c_de_", top=0.8))
    assert decoded.numpy().tolist() == [[idx("a"), idx("b"), idx(" "), idx("c")] + [-1] * 4]
    assert texts(decoded) == ["ab c"]
    # five steps count: four characters and the padding that ends them
    np.testing.assert_allclose(confidence.numpy(), [0.8**5], rtol=1e-5)


def test_per_position_without_padding_and_empty():
    decoded, _ = per_position_decode(np.concatenate([peaked("abc"), peaked("_bc")]))
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
            "position": per_position_decode(probabilities),
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
