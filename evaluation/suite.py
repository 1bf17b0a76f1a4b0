"""Held-out data for the evaluation suite (tests/test_evaluation_suite.py, FSDL lab 7's idea):
models trained through the pipeline on real data are loaded as served and read data that no
step of their run saw, neither for training nor to choose the kept epoch.

- Characters: EMNIST test-part images outside the subsample that became the run's eval split
  (data.tfrecords.convert_emnist subsamples the test part with the same seed).
- Lines: new windows of the same sentences (a seed neither split used) drawn from the EMNIST
  test glyph bank of the run, so both the texts' drawings and the glyphs are unseen.
"""

import numpy as np

HELD_OUT_SEED = 2  # data.sentences windows: train lines use seed 0, eval lines seed 1


def held_out_characters(
    emnist_dir, subsample_fraction: float, count: int, seed: int = 0
) -> tuple[np.ndarray, list[str]]:
    """`count` EMNIST ByClass test images (uint8, upright) and their characters, none of them in
    the eval split of a run with this `subsample_fraction` (the run's own seed, 0)."""
    from data.emnist import read_emnist
    from data.tfrecords import subsample

    test = read_emnist(emnist_dir, "byclass", "test")
    positions = np.arange(len(test.labels))
    if subsample_fraction < 1:
        used, _ = subsample(positions, test.labels, subsample_fraction)
        positions = np.setdiff1d(positions, used)
    if len(positions) < count:
        raise ValueError(f"only {len(positions)} held-out test images, {count} asked for")
    chosen = np.sort(np.random.default_rng(seed).choice(positions, size=count, replace=False))
    return test.images[chosen], [test.characters[label] for label in test.labels[chosen]]


def held_out_lines(
    test_bank_path: str, synthesis: dict, count: int
) -> tuple[np.ndarray, list[str]]:
    """`count` lines (uint8 images, texts): windows of the run's sentences taken with
    HELD_OUT_SEED, drawn with the run's synthesis arguments from its test glyph bank."""
    from data.sentences import load_sentences, sentence_windows
    from transform.line_synthesis import load_glyph_bank, synthesize_lines

    texts = sentence_windows(load_sentences(), synthesis["max_length"], count, HELD_OUT_SEED)
    seeds = np.arange(count, dtype=np.int64) + 10**9  # unlike the splits' seeds
    images, _ = synthesize_lines(texts, seeds, load_glyph_bank(test_bank_path), **synthesis)
    return (images.numpy() * 255).round().astype(np.uint8), texts


def accuracy(predictions: list, truths: list) -> float:
    """Share of (text, confidence) predictions whose text is the truth."""
    return float(np.mean([text == truth for (text, _), truth in zip(predictions, truths)]))
