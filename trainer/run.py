"""The Trainer's `run_fn`: builds the configured network, fits it on Transform's output, exports.

The experiment config travels in `custom_config["experiment"]` (validated JSON), line models'
glyph banks in `custom_config["glyph_banks"]`. Training figures (examples/s, history) are
written to `training_metrics.json` in the model run directory, for benchmarks.
"""

import json
import os
import time

import keras
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from data.features import GLYPH_SET_KEY, IMAGE_KEY, LABEL_KEY, SEED_KEY, TEXT_KEY
from trainer.datasets import DATASET_CHARACTERS
from trainer.export import export_classifier, export_line_model
from trainer.lines import build_line_model, model_inputs
from trainer.networks import NETWORKS
from training.config import ExperimentConfig
from transform.line_preprocessing import draw_lines, synthesis_args
from transform.line_synthesis import load_glyph_bank

METRICS_FILE = "training_metrics.json"
_SEED_STRIDE = 1_000_003  # seeds of redrawn lines: seed + epoch * stride


def _dataset(fn_args, files, tf_transform_output, batch_size: int, shuffle: bool):
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=LABEL_KEY, num_epochs=1, shuffle=shuffle, shuffle_seed=0
        ),
        tf_transform_output.transformed_metadata.schema,
    )


def build_classifier(config: ExperimentConfig, image_shape: tuple) -> keras.Model:
    """The configured character network, compiled for integer labels."""
    characters = DATASET_CHARACTERS[config.dataset]
    model = NETWORKS[config.network](image_shape, len(characters), **config.network_args)
    model.compile(
        optimizer=keras.optimizers.Adam(config.train_args["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class _EpochCounter(keras.callbacks.Callback):
    def __init__(self, variable: tf.Variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


def _redraw_every_epoch(dataset, config: ExperimentConfig, bank_paths: list, epoch: tf.Variable):
    """Replaces each training line's image by a fresh drawing for the current epoch."""
    banks = [load_glyph_bank(path) for path in bank_paths]
    synthesis = synthesis_args(config.dataset_args)

    def redraw(features, labels):
        seeds = features[SEED_KEY] + tf.cast(epoch, tf.int64) * _SEED_STRIDE
        images, _ = draw_lines(features[TEXT_KEY], seeds, features[GLYPH_SET_KEY], banks, synthesis)
        return {**features, IMAGE_KEY: images}, labels

    return dataset.map(redraw)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    config = ExperimentConfig.from_json(fn_args.custom_config["experiment"])
    keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    spec = tf_transform_output.transformed_feature_spec()
    image_shape = tuple(spec[IMAGE_KEY].shape)
    batch_size = config.train_args["batch_size"]
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, batch_size, shuffle=True)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, batch_size, shuffle=False)
    callbacks = [keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)]

    lines = config.dataset == "EmnistLinesDataset"
    if lines:
        model = build_line_model(config, image_shape)
        if config.dataset_args["resample_every_epoch"]:
            epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
            callbacks.append(_EpochCounter(epoch))
            train = _redraw_every_epoch(train, config, fn_args.custom_config["glyph_banks"], epoch)
    else:
        model = build_classifier(config, image_shape)

    def inputs(features, labels):
        return (model_inputs(config, features, labels) if lines else features[IMAGE_KEY]), labels

    trained_examples = tf.Variable(0, dtype=tf.int64, trainable=False)

    def count(features, labels):  # counts as it trains: no extra pass over the data
        trained_examples.assign_add(tf.shape(labels, out_type=tf.int64)[0])
        return features, labels

    train, evaluation = train.map(inputs).map(count), evaluation.map(inputs)
    started = time.perf_counter()
    history = model.fit(
        train,
        validation_data=evaluation,
        epochs=config.train_args["epochs"],
        callbacks=callbacks,
        verbose=2,
    )
    seconds = time.perf_counter() - started
    examples = int(trained_examples.numpy()) // config.train_args["epochs"]
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
    with open(os.path.join(fn_args.model_run_dir, METRICS_FILE), "w") as f:
        json.dump(
            {
                "config": json.loads(config.to_json()),
                "train_examples_per_epoch": examples,
                "fit_seconds": seconds,
                "examples_per_second": examples * config.train_args["epochs"] / seconds,
                "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            },
            f,
            indent=2,
        )
    if lines:
        export_line_model(model, config, spec, fn_args.serving_model_dir)
    else:
        characters = DATASET_CHARACTERS[config.dataset]
        export_classifier(model, tf_transform_output, characters, fn_args.serving_model_dir)
