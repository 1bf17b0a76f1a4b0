"""Transform's preprocessing for EMNIST lines: text + seed -> a drawn, normalized line image.

Line examples carry no image: Transform draws each one from its text and seed with EMNIST glyphs
(`transform.line_synthesis`). Lines of the train split use glyphs of EMNIST's train part and eval
lines glyphs of its test part, so evaluation never sees a training glyph; since Transform runs one
graph over every split, each example names its glyph set. The Trainer can call `draw_lines` too,
with new seeds, to draw fresh lines every epoch.

`custom_config`: {"glyph_banks": [train bank path, test bank path], "synthesis": the keyword
arguments of `synthesize_lines` (max_length, min_overlap, max_overlap), derived from the dataset
arguments by trainer.datasets.emnist_lines}. The pipeline's GlyphBanks step builds the banks and
its Transform (`components.glyph_banks.Transform`) adds their paths when it runs.
"""

import tensorflow as tf

from data.features import (
    GLYPH_SET_KEY,
    IMAGE_KEY,
    LABEL_KEY,
    LENGTH_KEY,
    SEED_KEY,
    TEXT_KEY,
)
from transform.line_synthesis import load_glyph_bank, synthesize_lines


def draw_lines(texts, seeds, glyph_sets, banks: list, synthesis: dict):
    """(images float32 [B, 28, max_length*28, 1], labels int64 [B, max_length]); each line is
    drawn from `banks[glyph_set]`."""
    drawn = [synthesize_lines(texts, seeds, bank, **synthesis) for bank in banks]
    images = drawn[0][0]
    for glyph_set, (other_images, _) in enumerate(drawn[1:], start=1):
        images = tf.where(tf.equal(glyph_sets, glyph_set)[:, None, None], other_images, images)
    return images[..., None], drawn[0][1]


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """tf.Transform entry point: the drawn image, its label, and the fields to redraw it."""
    if "glyph_banks" not in custom_config:
        raise ValueError(
            "custom_config has no 'glyph_banks': EMNIST lines are drawn by "
            "components.glyph_banks.Transform, given the GlyphBanks step's output"
        )
    flat = {key: tf.reshape(value, [-1]) for key, value in inputs.items()}
    banks = [load_glyph_bank(path) for path in custom_config["glyph_banks"]]
    images, labels = draw_lines(
        flat[TEXT_KEY], flat[SEED_KEY], flat[GLYPH_SET_KEY], banks, custom_config["synthesis"]
    )
    return {
        IMAGE_KEY: images,
        LABEL_KEY: labels,
        **{key: flat[key] for key in (LENGTH_KEY, TEXT_KEY, SEED_KEY, GLYPH_SET_KEY)},
    }
