"""Render line images next to augmented versions of them (transform.augmentation), to eyeball
that the variations look like other handwriting rather than damage.

Lines are PNG files from --images-dir (real crops, dark ink on paper) or, by default, lines drawn
from the embedded sample's glyphs; either way they are normalized as Transform does
(transform.preprocessing.decode_images: ink bright on dark, contrast stretched, fitted
left-aligned into the frame).

    python scripts/render_augmentations.py --out augmentations.png [--images-dir DIR]
        [--count 6] [--variants 4] [--strength 1.0] [--height 64 --width 1024] [--seed 0]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from render_synthetic_lines import glyph_bank  # scripts/ is on sys.path when a script runs

from data.errors import DatasetError
from data.sentences import load_sentences, sentence_windows
from evaluation.line_grid import save_line_grid
from transform.augmentation import augment_batch
from transform.line_synthesis import synthesize_lines
from transform.preprocessing import decode_images

SYNTHETIC_LENGTH = 16  # characters of a drawn line: 448x28 pixels, 1024x64 once fitted


def png_lines(images_dir: Path | None, count: int, seed: int) -> tuple[list, list]:
    """(PNG bytes, names) of `count` lines: the first PNG files of the folder in name order, or
    lines drawn from the embedded sample."""
    if images_dir:
        paths = sorted(images_dir.glob("*.png"))[:count]
        if not paths:
            raise DatasetError(f"no PNG files in {images_dir}")
        return [path.read_bytes() for path in paths], [path.name for path in paths]
    bank, _ = glyph_bank(None, sample=True, max_per_class=100)
    texts = sentence_windows(load_sentences(), SYNTHETIC_LENGTH, count, seed)
    seeds = np.random.default_rng(seed).integers(2**63 - 1, size=count)
    images, _ = synthesize_lines(texts, seeds, bank, SYNTHETIC_LENGTH)
    pngs = [
        tf.io.encode_png(tf.image.convert_image_dtype(image[..., None], tf.uint8)).numpy()
        for image in images
    ]
    return pngs, [repr(text) for text in texts]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument(
        "--images-dir", type=Path, help="folder of line PNGs (default: drawn lines)"
    )
    parser.add_argument("--count", type=int, default=6, help="lines")
    parser.add_argument("--variants", type=int, default=4, help="augmented versions of each line")
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        pngs, names = png_lines(args.images_dir, args.count, args.seed)
        originals = decode_images(
            tf.constant(pngs), args.height, args.width, left_align=True, stretch_contrast=True
        )
        variants = [
            augment_batch(originals, tf.constant([args.seed, v]), args.strength)
            for v in range(args.variants)
        ]
    except (DatasetError, ValueError, tf.errors.InvalidArgumentError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    images, captions = [], []
    for i, name in enumerate(names):
        images += [originals[i, ..., 0].numpy()] + [v[i, ..., 0].numpy() for v in variants]
        captions += [f"{name}: original"] + [f"variant {v + 1}" for v in range(args.variants)]
    title = f"augment_strength {args.strength}; {args.height}x{args.width}; seed {args.seed}"
    save_line_grid(images, captions, args.out, title)
    print(f"{len(names)} lines x {args.variants} augmented versions -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
