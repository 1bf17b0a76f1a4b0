"""Sample predictions in TensorBoard (trainer.sample_predictions): after each epoch the event file
under <model_run>/samples holds an image summary, tagged sample_predictions, of a decodable PNG
of the prediction grid (one row per line; rows of glyphs for characters)."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from data.features import IMAGE_KEY
from data.vocabulary import PAD_INDEX
from trainer.config import ExperimentConfig
from trainer.datasets import DATASETS
from trainer.models import MODEL_KINDS, build_model
from trainer.sample_predictions import (
    CHARACTER_SAMPLES,
    GLYPHS_PER_ROW,
    LINE_SAMPLES,
    LOG_SUBDIR,
    TAG,
    sample_predictions,
)

LINES = {
    "dataset": "EmnistLinesDataset",
    "model": "LineModelCtc",
    "dataset_args": {"max_length": 4},
    "network_args": {"lstm_dim": 8, "conv_dim": 8},
}
CHARACTERS = {"network": "mlp", "network_args": {"num_layers": 1, "layer_size": 8}}
DPI = 100  # evaluation.line_grid's figures: 12 inches wide, 1.25 inches a row plus 0.6


def _batches(shape, labels):
    images = np.random.default_rng(0).random((len(labels), *shape), np.float32)
    return tf.data.Dataset.from_tensor_slices(({IMAGE_KEY: images}, labels)).batch(5)


def _images(log_dir):
    """[(step, PIL image)] of the TAG image summaries (TF2 writes them as [width, height, PNG]
    string tensors of the images plugin)."""
    events = EventAccumulator(str(log_dir / LOG_SUBDIR), size_guidance={"tensors": 0}).Reload()
    assert events.SummaryMetadata(TAG).plugin_data.plugin_name == "images"
    return [
        (event.step, Image.open(io.BytesIO(event.tensor_proto.string_val[2])))
        for event in events.Tensors(TAG)
    ]


@pytest.mark.parametrize(
    "raw, rows",
    [(LINES, LINE_SAMPLES), (CHARACTERS, CHARACTER_SAMPLES // GLYPHS_PER_ROW)],
    ids=["lines", "characters"],
)
def test_each_epoch_logs_an_image_of_the_sample_predictions(tmp_path, raw, rows):
    config = ExperimentConfig.from_dict(raw)
    dataset, kind = DATASETS[config.dataset], MODEL_KINDS[config.model]
    shape = dataset.image_shape(config.dataset_args)
    if kind.reads == "lines":
        labels = np.full((12, 4), PAD_INDEX, np.int64)
        labels[:, :2] = [3, 11]  # "3B"
    else:
        labels = np.arange(20, dtype=np.int64)
    model = build_model(config, shape)
    (callback,) = sample_predictions(
        kind, dataset, model, config, _batches(shape, labels), str(tmp_path)
    )
    expected = LINE_SAMPLES if kind.reads == "lines" else CHARACTER_SAMPLES
    assert len(callback.images) == len(callback.truths) == expected
    if kind.reads == "lines":
        assert callback.truths == ["3B"] * LINE_SAMPLES
    else:
        assert "".join(callback.truths) == "".join(dataset.charset[:CHARACTER_SAMPLES])
    for epoch in range(2):
        callback.on_epoch_end(epoch, {})
    callback.on_train_end()

    images = _images(tmp_path)
    assert [step for step, _ in images] == [0, 1]
    for _, image in images:
        assert image.size == (12 * DPI, round((1.25 * rows + 0.6) * DPI))
        pixels = np.asarray(image.convert("L"))
        assert pixels.min() < 100 and pixels.max() > 200  # drawn, not blank


def test_kinds_that_read_no_text_get_no_samples(tmp_path):
    class Detector:
        reads = "pages"

    assert sample_predictions(Detector(), None, None, None, None, str(tmp_path)) == []
