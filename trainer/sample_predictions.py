"""Sample predictions in TensorBoard: after every epoch the Trainer reads a few fixed eval
examples with the model as it is then and logs one image of them, with truth and reading, under
Images (`python -m training.runs tensorboard`), so a run's progress can be seen, not only its
curves.

Lines: one row per line, its truth and the text read with its confidence and CER, misreads in
red. Characters: rows of glyphs, each captioned with the true characters and the ones read, in
the same order. Both are evaluation.line_grid's prediction grid, drawn into PNG bytes.
"""

import io
import os

import keras
import numpy as np
import tensorflow as tf

from data.features import IMAGE_KEY
from evaluation.line_grid import save_prediction_grid
from evaluation.text_metrics import labels_to_text
from trainer.models.base import CHARACTERS, LINES

LINE_SAMPLES = 8  # eval lines drawn each epoch
CHARACTER_SAMPLES = 16  # eval characters drawn each epoch
GLYPHS_PER_ROW = 8
TAG = "sample_predictions"
LOG_SUBDIR = "samples"  # beside the TensorBoard callback's train/ and validation/


class SamplePredictions(keras.callbacks.Callback):
    def __init__(self, read, images: np.ndarray, truths: list, log_dir: str, lines: bool):
        """`read(images)` -> [(text, confidence)]; `images`: [N, H, W, 1] in [0, 1]."""
        super().__init__()
        self.read, self.images, self.truths, self.lines = read, images, truths, lines
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, LOG_SUBDIR))

    def on_epoch_end(self, epoch, logs=None):
        png = prediction_png(self.images, self.truths, self.read(self.images), self.lines, epoch)
        with self.writer.as_default():
            tf.summary.image(TAG, tf.image.decode_png(png, channels=3)[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


def prediction_png(images: np.ndarray, truths: list, reads: list, lines: bool, epoch: int) -> bytes:
    """The grid of `images` with their truths and `reads` [(text, confidence)], as PNG bytes."""
    buffer = io.BytesIO()
    title = f"eval samples after epoch {epoch + 1}"
    if lines:
        save_prediction_grid([i[..., 0] for i in images], truths, reads, buffer, title)
    else:  # rows of GLYPHS_PER_ROW glyphs, each row captioned like a line
        gap = np.ones((images.shape[1], 2), images.dtype)
        rows = range(0, len(images), GLYPHS_PER_ROW)
        strips = [
            np.concatenate(
                [p for image in images[r : r + GLYPHS_PER_ROW] for p in (image[..., 0], gap)], 1
            )
            for r in rows
        ]
        reads = [
            (
                "".join(text for text, _ in reads[r : r + GLYPHS_PER_ROW]),
                min(c for _, c in reads[r : r + GLYPHS_PER_ROW]),
            )
            for r in rows
        ]
        truths = ["".join(truths[r : r + GLYPHS_PER_ROW]) for r in rows]
        save_prediction_grid(strips, truths, reads, buffer, title)
    return buffer.getvalue()


def sample_predictions(kind, dataset, model, config, eval_batches, log_dir: str) -> list:
    """[the callback] for the first examples of `eval_batches` ((features, labels) batches of
    Transform's output), read the way `kind` reads them; [] for kinds that read no text."""
    if kind.reads not in (CHARACTERS, LINES):
        return []
    lines = kind.reads == LINES
    count = LINE_SAMPLES if lines else CHARACTER_SAMPLES
    features, labels = next(iter(eval_batches.unbatch().batch(count).take(1)))
    images = features[IMAGE_KEY].numpy()
    if lines:
        truths = [labels_to_text(row) for row in labels.numpy()]

        def read(batch):
            result = kind.read(model, batch, config)
            return [
                (text.decode(), float(confidence))
                for text, confidence in zip(result["text"].numpy(), result["confidence"].numpy())
            ]
    else:
        truths = [dataset.charset[label] for label in labels.numpy().ravel()]

        def read(batch):
            probabilities = np.asarray(model(batch, training=False))
            return [(dataset.charset[p.argmax()], float(p.max())) for p in probabilities]

    return [SamplePredictions(read, images, truths, log_dir, lines)]
