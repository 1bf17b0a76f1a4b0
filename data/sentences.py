"""Text for synthetic handwritten lines (EMNIST lines): sentences, line text, windows, TFRecords.

Like FSDL's EmnistLines, a line is a random window of sentence text drawn with EMNIST glyphs.
Sentences come from the Brown corpus through NLTK when it is installed (NLTK_DATA) and otherwise
from the ~3,000 Brown sentences shipped in data/sample/sentences.txt, so a fresh clone works
offline. Line examples store only the text and a per-line seed; Transform draws the image
(transform/line_synthesis.py), so the TFRecords stay small and every image is reproducible.

    python -m data.sentences [--out PATH]   # regenerate the shipped sample (needs NLTK's Brown)
"""

import argparse
import logging
import os
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np
import tensorflow as tf

from data import locations
from data.errors import DatasetError
from data.features import GLYPH_SET_KEY, LENGTH_KEY, SEED_KEY, TEXT_KEY
from data.tfrecords import DEFAULT_NUM_SHARDS, read_examples, write_shards
from data.vocabulary import GLYPH_CHARACTERS

SAMPLE_SENTENCES = Path(__file__).resolve().parent / "sample" / "sentences.txt"
SOURCES = ("auto", "brown", "sample")
SAMPLE_EVERY = 19  # every 19th of Brown's 57,340 sentences: 3,018, about 310 KB

_BROWN_FILES = r"c[a-z]\d\d"  # the corpus files, as nltk.corpus.brown names them
_VOCABULARY = frozenset(GLYPH_CHARACTERS)
_NO_SPACE_AFTER = re.compile(r"(``|[($\[{]) ")
_NO_SPACE_BEFORE = re.compile(r" (''|[.,;:!?%)\]}])")
_SAMPLE_HEADER = f"""\
# Every {SAMPLE_EVERY}th sentence of the Brown corpus, one per line, detokenized by data/sentences.py
# (regenerate: NLTK_DATA=DIR python -m data.sentences). Lines starting with # are comments.
# Brown Corpus, W. N. Francis and H. Kucera, Brown University (1964, revised 1971 and 1979).
# Distributed with the permission of the copyright holder, redistribution permitted.
"""

log = logging.getLogger(__name__)


def load_sentences(source: str = "auto") -> list[str]:
    """Sentences as plain text: "brown" (NLTK), "sample" (shipped), or "auto" (Brown, else sample).

    NLTK_DATA is read at every call, not only when NLTK was imported, so setting it later works.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown sentence source {source!r}; expected one of {SOURCES}")
    if source == "sample":
        return _sample_sentences()
    try:
        return _brown_sentences()
    except LookupError as e:
        message = (
            f"NLTK cannot find the Brown corpus in {_nltk_paths()}; set NLTK_DATA to a "
            "directory holding corpora/brown or run nltk.download('brown')"
        )
        if source == "brown":
            raise DatasetError(message) from e
        log.warning("%s; using the shipped sample %s instead", message, SAMPLE_SENTENCES)
    return _sample_sentences()


def to_line_text(text: str) -> str:
    """`text` in the glyph vocabulary (data.vocabulary.GLYPH_CHARACTERS): what a drawn line can show.

    EMNIST has glyphs for 0-9, A-Z and a-z only, so every other character (punctuation, symbols)
    is dropped; accented letters keep their base letter (NFKD). Whitespace becomes one space
    and the result is stripped: "Atlanta's  well-known\tcafé." -> "Atlantas wellknown cafe".
    """
    kept = "".join(
        c for c in unicodedata.normalize("NFKD", text) if c in _VOCABULARY or c.isspace()
    )
    return " ".join(kept.split())


def sentence_windows(sentences, max_length: int, count: int, seed: int) -> list[str]:
    """`count` random windows of at most `max_length` characters of the sentences' line text.

    As in FSDL's EmnistLines, the cleaned sentences are joined into one text and a window starts
    at a random word and ends, after a random number of whole words, at a word end: no word is
    cut, and words longer than `max_length` never appear. The same seed gives the same windows.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    text = " ".join(filter(None, map(to_line_text, sentences)))
    spans = np.array([m.span() for m in re.finditer(r"\S+", text)], dtype=np.int64).reshape(-1, 2)
    starts, ends = spans[:, 0], spans[:, 1]
    fitting = np.flatnonzero(ends - starts <= max_length)
    if not len(fitting):
        raise DatasetError(
            f"the sentences have no word of at most max_length={max_length} characters"
        )
    rng = np.random.default_rng(seed)
    first = rng.choice(fitting, size=count)
    last = np.searchsorted(ends, starts[first] + max_length, side="right") - 1  # >= first: it fits
    final = rng.integers(first, last, endpoint=True)
    return [text[start:end] for start, end in zip(starts[first], ends[final])]


def write_line_examples(
    texts, out_dir, split: str, seed: int, num_shards: int = DEFAULT_NUM_SHARDS, glyph_set: int = 0
) -> list[Path]:
    """Write line texts as `num_shards` contiguous GZIP TFRecord shards, replacing earlier shards.

    Each example gets its own seed, derived from `seed` and distinct within the split, so every
    image is reproducible and no two lines share their random draws; and `glyph_set`, the glyph
    bank that draws them (0: EMNIST's train part, 1: its test part, so eval lines use unseen glyphs).
    """
    for i, text in enumerate(texts):
        if text != to_line_text(text):
            raise ValueError(f"texts[{i}] = {text!r} is not line text; clean it with to_line_text")
    seeds = np.random.default_rng(seed).choice(2**63 - 1, size=len(texts), replace=False)  # int64
    records = [_line_example(text, int(s), glyph_set) for text, s in zip(texts, seeds)]
    return write_shards(records, out_dir, split, num_shards)


def read_line_examples(out_dir, split: str) -> tuple[list[str], np.ndarray]:
    """Texts and int64 seeds of a split written by write_line_examples, in order."""
    texts, seeds = [], []
    for features in read_examples(out_dir, split, "line examples"):
        texts.append(features[TEXT_KEY].bytes_list.value[0].decode("utf-8"))
        seeds.append(features[SEED_KEY].int64_list.value[0])
    return texts, np.array(seeds, dtype=np.int64)


def write_sample(path=SAMPLE_SENTENCES) -> int:
    """Regenerate the shipped sample from NLTK's Brown corpus; returns the number of sentences."""
    sentences = load_sentences("brown")[::SAMPLE_EVERY]
    Path(path).write_text(_SAMPLE_HEADER + "".join(f"{s}\n" for s in sentences), encoding="utf-8")
    return len(sentences)


def _brown_sentences() -> list[str]:
    """Brown's sentences, detokenized; LookupError when NLTK cannot find the corpus."""
    import nltk  # imported here: only this source needs it, and it takes a second to import
    from nltk.corpus.reader import TaggedCorpusReader

    # A fresh reader rather than nltk.corpus.brown, which caches its first lookup for the process.
    root = nltk.data.find("corpora/brown", paths=_nltk_paths())
    return [
        _detokenize(tokens)
        for tokens in TaggedCorpusReader(root, _BROWN_FILES, encoding="ascii").sents()
    ]


def _nltk_paths() -> list[str]:
    """NLTK's search path with the current NLTK_DATA first (NLTK reads it only on import)."""
    import nltk

    return [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p] + nltk.data.path


def locate_sentences() -> str:
    """Applies the data location rule (data.locations) to the sentences: $NLTK_DATA, else
    ../shared/data/nltk_data (set as NLTK_DATA for this process), else NLTK's own paths, else
    the shipped sample. Returns where load_sentences() will read them, for the start of a run."""
    import nltk

    shared = locations.SHARED_DATA / "nltk_data"
    if not os.environ.get("NLTK_DATA") and (shared / "corpora" / "brown").is_dir():
        os.environ["NLTK_DATA"] = str(shared)
    try:
        return f"the Brown corpus at {nltk.data.find('corpora/brown', paths=_nltk_paths()).path}"
    except LookupError:
        return (
            f"the shipped sample {SAMPLE_SENTENCES.name} (no Brown corpus in $NLTK_DATA, "
            f"{shared} or NLTK's paths)"
        )


def _detokenize(tokens) -> str:
    """Brown tokens -> text: no space inside quotes and brackets or before punctuation.

    Simpler (and 50x faster) than NLTK's TreebankWordDetokenizer, and enough for line text,
    which drops punctuation anyway; what matters is that words are not split or glued.
    """
    text = _NO_SPACE_BEFORE.sub(r"\1", _NO_SPACE_AFTER.sub(r"\1", " ".join(tokens)))
    return text.replace("``", '"').replace("''", '"')


def _sample_sentences() -> list[str]:
    try:
        lines = SAMPLE_SENTENCES.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DatasetError(
            f"cannot read the sentence sample {SAMPLE_SENTENCES}: {e.strerror}"
        ) from e
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _line_example(text: str, seed: int, glyph_set: int) -> bytes:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                TEXT_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])
                ),
                SEED_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[seed])),
                LENGTH_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[len(text)])),
                GLYPH_SET_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[glyph_set])),
            }
        )
    ).SerializeToString(deterministic=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data.sentences",
        description="Regenerate the Brown sentence sample from NLTK_DATA.",
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_SENTENCES)
    args = parser.parse_args(argv)
    try:
        count = write_sample(args.out)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{count} sentences -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
