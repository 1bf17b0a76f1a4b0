"""Generate the synthetic EMNIST-like sample that ships in data/sample/emnist.

A fresh clone must run the pipeline and its tests offline, and the real EMNIST may not be
redistributed here, so we render the 62 ByClass characters with the TrueType fonts that
ship inside matplotlib and distort them (rotation, scale, shift, stroke width, blur). The
result is framed like EMNIST (upright, white ink on black, glyph box normalised and centred
in 28x28) so the same model code works on both; it is learnable but, like EMNIST, leaves
o/O/0, l/I/1 and friends ambiguous. Seeded, so rerunning reproduces the same images.

    python -m data.make_sample [--out DIR] [--preview grid.png]
"""

import argparse
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from data.emnist import BYCLASS_CHARACTERS
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.tfrecords import write_split

FONTS = (
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSerif",
    "DejaVuSerif-Bold",
    "DejaVuSansMono",
    "cmr10",
    "cmss10",
    "cmtt10",
    "STIXGeneral",
)
TRAIN_PER_CLASS, EVAL_PER_CLASS = 40, 10
SIZE = 28
_CANVAS, _FONT_SIZE = 160, 96  # render large so dilation/erosion has pixels to work with
# Stroke width at render size; mostly thickened, as pen strokes in EMNIST are bolder than fonts.
_STROKES = (
    ImageFilter.MinFilter(3),
    None,
    ImageFilter.MaxFilter(5),
    ImageFilter.MaxFilter(9),
    ImageFilter.MaxFilter(11),
)
_STROKE_WEIGHTS = (0.1, 0.25, 0.3, 0.25, 0.1)


def render(character: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator) -> np.ndarray:
    """One distorted, EMNIST-framed uint8 [28,28] image of `character`."""
    glyph = Image.new("L", (_CANVAS, _CANVAS))
    ImageDraw.Draw(glyph).text(
        (_CANVAS / 2, _CANVAS / 2), character, fill=255, font=font, anchor="mm"
    )
    stroke = _STROKES[rng.choice(len(_STROKES), p=_STROKE_WEIGHTS)]
    if stroke is not None:
        glyph = glyph.filter(stroke)
    glyph = glyph.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, expand=True)
    glyph = glyph.crop(glyph.getbbox())
    # EMNIST scales each glyph's box to the frame keeping its aspect ratio (so o/O match in size).
    longest = rng.uniform(18, 24)
    scale = longest / max(glyph.size)
    glyph = glyph.resize(
        (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
        Image.Resampling.LANCZOS,
    )
    frame = Image.new("L", (SIZE, SIZE))
    shift = rng.integers(-2, 3, size=2)
    frame.paste(
        glyph, ((SIZE - glyph.width) // 2 + shift[0], (SIZE - glyph.height) // 2 + shift[1])
    )
    return np.asarray(frame.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8))))


def make_sample(seed: int = 0):
    """(train, eval) as (images, labels) pairs, each split shuffled."""
    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [ImageFont.truetype(str(font_dir / f"{name}.ttf"), _FONT_SIZE) for name in FONTS]
    rng = np.random.default_rng(seed)
    per_class = TRAIN_PER_CLASS + EVAL_PER_CLASS
    images = np.stack(
        [
            render(character, fonts[i % len(fonts)], rng)
            for character in BYCLASS_CHARACTERS
            for i in range(per_class)
        ]
    )
    labels = np.repeat(np.arange(len(BYCLASS_CHARACTERS)), per_class)
    is_eval = np.tile(np.arange(per_class) >= TRAIN_PER_CLASS, len(BYCLASS_CHARACTERS))
    splits = []
    for mask in (~is_eval, is_eval):
        order = rng.permutation(np.flatnonzero(mask))
        splits.append((images[order], labels[order]))
    return splits


def save_preview(
    images: np.ndarray, labels: np.ndarray, path, per_class: int = 6, columns: int = 4
) -> None:
    """PNG grid for eyeballing: `per_class` examples of each class, classes in `columns` columns."""
    blocks = [
        np.concatenate(list(images[labels == c][:per_class]), axis=1) for c in np.unique(labels)
    ]
    blocks += [np.zeros_like(blocks[0])] * (-len(blocks) % columns)
    rows = len(blocks) // columns
    grid = np.concatenate(
        [np.concatenate(blocks[i * rows : (i + 1) * rows], axis=0) for i in range(columns)], axis=1
    )
    Image.fromarray(grid).resize(
        (grid.shape[1] * 2, grid.shape[0] * 2), Image.Resampling.NEAREST
    ).save(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data.make_sample", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preview", type=Path, help="also save a PNG grid of the train split here")
    args = parser.parse_args(argv)
    train, evaluation = make_sample(args.seed)
    for split, (images, labels) in ((TRAIN_SPLIT, train), (EVAL_SPLIT, evaluation)):
        write_split(images, labels, BYCLASS_CHARACTERS, args.out, split)
    if args.preview:
        save_preview(train[0], train[1], args.preview)


if __name__ == "__main__":
    main()
