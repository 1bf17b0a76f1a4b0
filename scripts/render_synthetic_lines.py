"""Render synthetic EMNIST lines to a PNG, each with its label text underneath, to eyeball them.

Glyphs come from the real EMNIST ByClass files when present (--emnist-dir, else $EMNIST_DIR, else
../shared/data/emnist next to the repository) and otherwise from the embedded synthetic sample;
sentences from data.sentences.load_sentences() (Brown via NLTK_DATA, else the shipped sample).

    python scripts/render_synthetic_lines.py --out lines.png [--emnist-dir DIR | --sample-glyphs]
        [--max-length 34] [--min-overlap 0 --max-overlap 0.33] [--count 12] [--seed 0]
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from data.errors import DatasetError
from data.features import TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.sentences import load_sentences, sentence_windows
from data.vocabulary import LINE_CHARACTERS
from evaluation.line_grid import save_line_grid
from transform.line_synthesis import GlyphBank, emnist_glyph_bank, synthesize_lines

DEFAULT_EMNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emnist"


def glyph_bank(emnist_dir: Path | None, sample: bool, max_per_class: int) -> tuple[GlyphBank, str]:
    """The bank and where its glyphs came from; an explicit --emnist-dir must be readable."""
    if not sample:
        source = emnist_dir or Path(os.environ.get("EMNIST_DIR", DEFAULT_EMNIST_DIR))
        if emnist_dir or source.exists():
            return emnist_glyph_bank(source, TRAIN_SPLIT, max_per_class), f"EMNIST {source}"
    bank = emnist_glyph_bank(None, TRAIN_SPLIT, max_per_class)
    return bank, f"embedded synthetic sample {SAMPLE_DIR}"


def render(images: np.ndarray, labels: np.ndarray, path: Path, title: str) -> None:
    """One line per row, white ink on black as drawn, with the text its labels spell below it."""
    texts = [
        "".join(LINE_CHARACTERS[i] for i in label if i < len(LINE_CHARACTERS)) for label in labels
    ]
    save_line_grid(images, [repr(text) for text in texts], path, title)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--emnist-dir", type=Path, help="EMNIST gzip.zip or directory of its files")
    parser.add_argument(
        "--sample-glyphs",
        action="store_true",
        help="use the embedded sample even if EMNIST is present",
    )
    parser.add_argument("--max-length", type=int, default=34)
    parser.add_argument("--min-overlap", type=float, default=0.0)
    parser.add_argument("--max-overlap", type=float, default=0.33)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--max-per-class", type=int, default=100, help="glyphs kept per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        bank, glyph_source = glyph_bank(args.emnist_dir, args.sample_glyphs, args.max_per_class)
        texts = sentence_windows(load_sentences(), args.max_length, args.count, args.seed)
        seeds = np.random.default_rng(args.seed).integers(2**63 - 1, size=args.count)
        images, labels = synthesize_lines(
            texts, seeds, bank, args.max_length, args.min_overlap, args.max_overlap
        )
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    title = (
        f"glyphs: {glyph_source}; overlap [{args.min_overlap}, {args.max_overlap}]; "
        f"max_length {args.max_length}; seed {args.seed}"
    )
    render(images.numpy(), labels.numpy(), args.out, title)
    print(f"{args.count} lines ({glyph_source}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
