"""Images of handwritten lines drawn from their text and a seed, with EMNIST glyphs (EMNIST lines).

As in FSDL's EmnistLines, each character of a line is a random EMNIST image of its class and
neighbouring glyphs overlap by a random fraction. Drawing is TensorFlow ops only, vectorized over
the batch, so the same function runs eagerly, in tf.data and in a tf.Transform preprocessing_fn;
its randomness comes only from stateless ops keyed by each line's seed, so a line's image depends
on its text and seed alone, never on the batch it is drawn in.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from data.emnist import BYCLASS_CHARACTERS, read_emnist
from data.errors import DatasetError
from data.features import TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from data.vocabulary import GLYPH_CHARACTERS, PAD_INDEX, SPACE_INDEX
from transform.preprocessing import IMAGE_SIZE

# Glyphs kept per class in a bank: every drawing call carries its bank as a graph constant.
MAX_GLYPHS_PER_CLASS = 300
_ASCII = 128  # every line character is ASCII; the class of each code point below this
_CLASS_OF_CODE = np.full(_ASCII, -1, dtype=np.int64)
_CLASS_OF_CODE[[ord(c) for c in GLYPH_CHARACTERS]] = np.arange(len(GLYPH_CHARACTERS))


class GlyphBank:
    """EMNIST character images grouped by class (0..61), what synthesize_lines draws from.

    `images` are uint8 [N, 28, 28], upright, white ink on black, as data.emnist reads them.
    Every ByClass class needs at least one glyph, so any line text can be drawn. Drawing embeds
    the bank in the graph (and in a Transform graph, in the SavedModel), so `max_per_class`
    keeps a deterministic random subset of at most that many glyphs per class.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        max_per_class: int | None = None,
        seed: int = 0,
    ):
        images, labels = np.asarray(images), np.asarray(labels)
        if (
            images.dtype != np.uint8
            or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)
            or len(images) != len(labels)
        ):
            raise ValueError(
                f"need uint8 images [N,{IMAGE_SIZE},{IMAGE_SIZE}] and N labels, got "
                f"{images.dtype} {images.shape} and {len(labels)} labels"
            )
        if max_per_class is not None and max_per_class < 1:
            raise ValueError(f"max_per_class must be at least 1, got {max_per_class}")
        if len(labels) and not 0 <= labels.min() <= labels.max() < len(BYCLASS_CHARACTERS):
            raise ValueError(
                f"labels must be ByClass indices 0..{len(BYCLASS_CHARACTERS) - 1}, "
                f"got range {labels.min()}..{labels.max()}"
            )
        counts = np.bincount(labels, minlength=len(BYCLASS_CHARACTERS))
        missing = [BYCLASS_CHARACTERS[c] for c in np.flatnonzero(counts == 0)]
        if missing:
            raise DatasetError(
                f"glyph bank has no image of {len(missing)} characters: "
                f"{''.join(missing)!r}; every ByClass character needs one"
            )
        rng = np.random.default_rng(seed)
        keep = [
            np.sort(
                rng.choice(
                    np.flatnonzero(labels == c), size=min(n, max_per_class or n), replace=False
                )
            )
            for c, n in enumerate(counts)
        ]
        order = np.concatenate(keep)  # grouped by class, original order within a class
        self.images = images[order]
        self.labels = labels[order].astype(np.int64)
        self.counts = np.array([len(k) for k in keep], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)


def emnist_glyph_bank(
    emnist: Path | None, split: str, max_per_class: int | None = MAX_GLYPHS_PER_CLASS
) -> GlyphBank:
    """The bank of `split`'s glyphs: from the official EMNIST ByClass files at `emnist` (its
    train part for the train split, its test part otherwise, so eval lines never reuse train
    glyphs), or from the embedded sample's `split` when `emnist` is None."""
    if emnist is None:
        images, labels, _ = read_split(SAMPLE_DIR, split)
    else:
        images, labels, _ = read_emnist(
            emnist, "byclass", "train" if split == TRAIN_SPLIT else "test"
        )
    return GlyphBank(images, labels, max_per_class)


def save_glyph_bank(path: str, bank: GlyphBank) -> None:
    """Write `bank` as .npz (images, labels) to a local or tf.io.gfile path such as gs://..."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=bank.images, labels=bank.labels)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def load_glyph_bank(path: str) -> GlyphBank:
    """Read a bank written by save_glyph_bank (local or tf.io.gfile path)."""
    try:
        with tf.io.gfile.GFile(path, "rb") as f, np.load(io.BytesIO(f.read())) as npz:
            return GlyphBank(npz["images"], npz["labels"])
    except tf.errors.NotFoundError as e:
        raise DatasetError(f"glyph bank {path} does not exist") from e
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
        raise DatasetError(f"{path} is not a glyph bank .npz with images and labels: {e}") from e


def synthesize_lines(
    texts: tf.Tensor,
    seeds: tf.Tensor,
    bank: GlyphBank,
    max_length: int,
    min_overlap: float = 0.0,
    max_overlap: float = 0.33,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draw a batch of lines: (images float32 [B, 28, max_length*28] in [0, 1], labels int64 [B, max_length]).

    texts: tf.string [B], only characters of data.vocabulary.GLYPH_CHARACTERS (see
    data.sentences.to_line_text); seeds: int64 [B]. Character i is a random bank image of its
    class (space: an empty glyph) placed at x = round(i * 28 * (1 - overlap)), where the line's
    overlap is uniform in [min_overlap, max_overlap]; overlapping pixels take the maximum. Lines
    are left-aligned on black. Labels are the characters' class indices padded with PAD_INDEX.
    A text longer than max_length, or with other characters, fails (InvalidArgumentError).
    """
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be an integer of at least 1, got {max_length!r}")
    if not 0 <= min_overlap < 1:
        raise ValueError(f"min_overlap must be in [0, 1), got {min_overlap}")
    if not min_overlap <= max_overlap < 1:
        raise ValueError(
            f"max_overlap must be in [min_overlap={min_overlap}, 1), got {max_overlap}"
        )
    texts, seeds = tf.reshape(texts, [-1]), tf.reshape(tf.cast(seeds, tf.int64), [-1])
    codes = tf.strings.unicode_decode(texts, "UTF-8")
    flat_codes = codes.flat_values
    classes = codes.with_flat_values(
        tf.where(
            flat_codes < _ASCII, tf.gather(_CLASS_OF_CODE, tf.minimum(flat_codes, _ASCII - 1)), -1
        )
    )
    checks = [
        tf.debugging.assert_equal(tf.size(texts), tf.size(seeds), message="need one seed per text"),
        tf.debugging.assert_non_negative(
            classes.flat_values,
            message="line text has characters outside data.vocabulary.GLYPH_CHARACTERS",
        ),
        tf.debugging.assert_less_equal(
            classes.row_lengths(),
            tf.constant(max_length, tf.int64),
            message=f"line text longer than max_length={max_length} characters",
        ),
    ]
    with tf.control_dependencies(checks):
        labels = classes.to_tensor(default_value=PAD_INDEX, shape=[None, max_length])
    uniforms = _line_uniforms(seeds, tf.constant(max_length + 1))
    overlaps = min_overlap + (max_overlap - min_overlap) * uniforms[:, 0]
    return _draw(labels, uniforms[:, 1:], overlaps, bank), labels


@tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int32)])
def _line_uniforms(seeds: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """float32 [B, size] uniforms, row b keyed only by seeds[b].

    A tf.function because tf.map_fn run eagerly loops in Python (~40x slower for 256 lines).
    """
    return tf.map_fn(
        lambda seed: tf.random.stateless_uniform(
            [size], tf.stack([seed, tf.constant(0, tf.int64)])
        ),
        seeds,
        fn_output_signature=tf.TensorSpec([None], tf.float32),
    )


def _draw(labels: tf.Tensor, picks: tf.Tensor, overlaps: tf.Tensor, bank: GlyphBank) -> tf.Tensor:
    """Images of the lines: per character, glyph floor(pick * count) of its class at its x offset."""
    size = IMAGE_SIZE
    # Space and padding draw the empty glyph appended after the bank's classes.
    glyphs = tf.constant(np.concatenate([bank.images, np.zeros((1, size, size), np.uint8)]))
    counts = tf.constant(np.append(bank.counts, 1))
    firsts = tf.constant(np.cumsum(np.append(0, bank.counts)))
    classes = tf.where(labels == PAD_INDEX, tf.constant(SPACE_INDEX, tf.int64), labels)
    count = tf.gather(counts, classes)
    chosen = tf.gather(firsts, classes) + tf.minimum(
        tf.cast(picks * tf.cast(count, tf.float32), tf.int64), count - 1
    )
    columns = tf.transpose(
        tf.gather(glyphs, chosen), [0, 1, 3, 2]
    )  # [B, L, x, y]: one row per column

    batch, length = tf.shape(labels, out_type=tf.int64)[0], labels.shape[1]
    steps = tf.round(tf.range(length, dtype=tf.float32)[None, :] * size * (1.0 - overlaps[:, None]))
    x = tf.cast(steps, tf.int64)[:, :, None] + tf.range(
        size, dtype=tf.int64
    )  # [B, L, 28] target columns
    b = tf.broadcast_to(tf.range(batch)[:, None, None], tf.shape(x, out_type=tf.int64))
    canvas = tf.zeros(tf.stack([batch, length * size, size]), tf.uint8)
    canvas = tf.tensor_scatter_nd_max(canvas, tf.stack([b, x], axis=-1), columns)
    return tf.image.convert_image_dtype(tf.transpose(canvas, [0, 2, 1]), tf.float32)
