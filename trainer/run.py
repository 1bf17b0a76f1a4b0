"""The Trainer's `run_fn`: builds the configured network, fits it on Transform's output, exports.

The experiment config travels in `custom_config["experiment"]` (validated JSON); training figures
(examples/s, final metrics) are written to `training_metrics.json` in the model run directory so
benchmarks can compare the Trainer with plain Keras on the same data.
"""

import json
import os
import time

import keras
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from data.features import IMAGE_KEY, LABEL_KEY
from trainer.datasets import DATASET_CHARACTERS
from trainer.export import export_classifier
from trainer.networks import NETWORKS
from training.config import ExperimentConfig

METRICS_FILE = "training_metrics.json"


def _dataset(fn_args, files, tf_transform_output, batch_size: int, shuffle: bool):
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=LABEL_KEY, num_epochs=1, shuffle=shuffle, shuffle_seed=0
        ),
        tf_transform_output.transformed_metadata.schema,
    )


def build_classifier(config: ExperimentConfig, image_shape: tuple) -> keras.Model:
    """The configured network, compiled for integer labels."""
    characters = DATASET_CHARACTERS[config.dataset]
    model = NETWORKS[config.network](image_shape, len(characters), **config.network_args)
    model.compile(
        optimizer=keras.optimizers.Adam(config.train_args["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    config = ExperimentConfig.from_json(fn_args.custom_config["experiment"])
    keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    image_shape = tuple(tf_transform_output.transformed_feature_spec()[IMAGE_KEY].shape)
    batch_size = config.train_args["batch_size"]
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, batch_size, shuffle=True)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, batch_size, shuffle=False)

    model = build_classifier(config, image_shape)
    started = time.perf_counter()
    history = model.fit(
        train,
        validation_data=evaluation,
        epochs=config.train_args["epochs"],
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
        verbose=2,
    )
    seconds = time.perf_counter() - started
    examples = sum(int(x[LABEL_KEY].shape[0]) for x in train.map(lambda f, y: {LABEL_KEY: y}))
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
    export_classifier(
        model, tf_transform_output, DATASET_CHARACTERS[config.dataset], fn_args.serving_model_dir
    )
