"""Error rates of recognized text against reference text, in plain Python.

These are the definitions of record: the TFMA metrics in `evaluation.tfma_metrics` accumulate the
same counts, so a figure from the Evaluator can be checked by hand with these functions.

Rates are pooled over lines (total errors / total reference units), not averaged per line, so a
long line weighs more than a short one, as in the usual CER/WER. A reference with nothing in it
has nothing to get wrong: no errors against it is a rate of 0, any error an infinite rate (an
error per reference unit is undefined, and inf fails every upper-bound threshold, as it should).
"""

from collections.abc import Sequence

from common.signatures import NO_CLASS
from data.vocabulary import LINE_CHARACTERS, PAD_INDEX


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning a into b."""
    previous = list(range(len(b) + 1))
    for i, a_item in enumerate(a, start=1):
        current = [i]
        for j, b_item in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a_item != b_item))
            )
        previous = current
    return previous[-1]


def error_rate(errors: float, reference_size: float) -> float:
    """errors / reference_size, with the empty-reference rule of this module's docstring."""
    if not errors:
        return 0.0
    return errors / reference_size if reference_size else float("inf")


def _check_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(
            f"{len(references)} references but {len(hypotheses)} hypotheses; they pair up by line"
        )


def character_errors(reference: str, hypothesis: str) -> tuple:
    """One line's (character edits, reference characters)."""
    return edit_distance(reference, hypothesis), len(reference)


def word_errors(reference: str, hypothesis: str) -> tuple:
    """One line's (word edits, reference words); words are runs of non-spaces."""
    reference_words = reference.split()
    return edit_distance(reference_words, hypothesis.split()), len(reference_words)


def _pooled_rate(line_errors, references: Sequence[str], hypotheses: Sequence[str]) -> float:
    _check_pairs(references, hypotheses)
    counts = [line_errors(r, h) for r, h in zip(references, hypotheses)]
    return error_rate(sum(e for e, _ in counts), sum(n for _, n in counts))


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character edits over all lines / reference characters over all lines."""
    return _pooled_rate(character_errors, references, hypotheses)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word edits over all lines / reference words over all lines."""
    return _pooled_rate(word_errors, references, hypotheses)


def exact_match_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Fraction of lines recognized without a single error."""
    _check_pairs(references, hypotheses)
    if not references:
        raise ValueError("no lines: the exact-match rate of nothing is undefined")
    return sum(r == h for r, h in zip(references, hypotheses)) / len(references)


def labels_to_text(indices: Sequence[int]) -> str:
    """Class indices of one line -> its text. Padding (PAD_INDEX in labels and raw per-position
    output, -1 in decoder output) is dropped wherever it is; any other non-class index is refused
    rather than read as a character from the end of the vocabulary."""
    characters = []
    for index in map(int, indices):
        if index in (PAD_INDEX, NO_CLASS):
            continue
        if not 0 <= index < PAD_INDEX:
            raise ValueError(f"class index {index} is not a line character, padding or -1")
        characters.append(LINE_CHARACTERS[index])
    return "".join(characters)
