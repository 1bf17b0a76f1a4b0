"""Transcriptions of real handwriting -> text in data.vocabulary.LINE_CHARACTERS, with counts.

HTR exports use typographic quotes, dashes, accents, editorial brackets and symbols (£, =, ∞)
that the line models have no class for. The rule, applied character by character so that every
change can be counted:

1. Any whitespace becomes a space; runs of spaces become one space; the text is stripped.
2. A character in LINE_CHARACTERS is kept.
3. Otherwise its Unicode NFKD decomposition without combining marks is taken (é -> e, ﬁ -> fi,
   … -> ...), then typographic quotes/dashes and a few look-alikes map through _ASCII
   (’ -> ', “ -> ", – -> -, [ -> (, ] -> )). If every resulting character is in the charset the
   character is MAPPED (counted under "src->dst").
4. Anything else (£, =, ^, ∞, ...) is DROPPED (counted under the character).

Lines whose text is empty afterwards are skipped by the converter, never written.
"""

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from data.vocabulary import LINE_CHARACTERS

_CHARSET = frozenset(LINE_CHARACTERS)
_ASCII = {
    **dict.fromkeys("‘’‚‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    "[": "(",
    "]": ")",
    "{": "(",
    "}": ")",
    "⁄": "/",
    "×": "x",
}
_SPACES = re.compile(r"\s+")


@dataclass
class CharsetCounts:
    """What normalization changed over many lines: {"é->e": n} and {"£": n}."""

    mapped: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)

    def update(self, other: "CharsetCounts") -> None:
        self.mapped.update(other.mapped)
        self.dropped.update(other.dropped)


def to_line_charset(text: str, counts: CharsetCounts | None = None) -> str:
    """`text` per the module's rule; changes are added to `counts` when given."""
    out = []
    for char in _SPACES.sub(" ", text).strip():
        if char in _CHARSET:
            out.append(char)
            continue
        replacement = _replacement(char)
        if replacement is None:
            if counts is not None:
                counts.dropped[char] += 1
        else:
            out.append(replacement)
            if counts is not None:
                counts.mapped[f"{char}->{replacement}"] += 1
    return _SPACES.sub(" ", "".join(out)).strip()


def _replacement(char: str) -> str | None:
    decomposed = "".join(
        c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
    )
    ascii_text = "".join(_ASCII.get(c, c) for c in decomposed)
    return ascii_text if ascii_text and all(c in _CHARSET for c in ascii_text) else None
