"""The Trainer's `run_fn`: builds the configured network, fits it on Transform's output, exports.

`custom_config` holds the experiment config (validated JSON, under "experiment") and the
dataset's trainer resources (e.g. glyph banks); everything that depends on the model kind or the
dataset is looked up once in their registries. Training figures (examples/s, history) are
written to `training_metrics.json` in the model run directory, for benchmarks and scripts.
"""

import json
import os
import time

import keras
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

from data.features import IMAGE_KEY, LABEL_KEY
from trainer import METRICS_FILE
from trainer.best_epoch import LAST, KeepBest, ValidationCer
from trainer.config import ExperimentConfig
from trainer.datasets import DATASETS
from trainer.models import MODEL_KINDS, build_model
from trainer.warm_start import save_weights, warm_start


def _dataset(fn_args, files, tf_transform_output, batch_size: int, shuffle: bool):
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=LABEL_KEY, num_epochs=1, shuffle=shuffle, shuffle_seed=0
        ),
        tf_transform_output.transformed_metadata.schema,
    )


def run_fn(fn_args: FnArgs) -> None:
    config = ExperimentConfig.from_json(fn_args.custom_config["experiment"])
    kind, dataset = MODEL_KINDS[config.model], DATASETS[config.dataset]
    keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    image_shape = tuple(tf_transform_output.transformed_feature_spec()[IMAGE_KEY].shape)
    batch_size = config.train_args["batch_size"]
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, batch_size, shuffle=True)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, batch_size, shuffle=False)
    train, callbacks = dataset.training_data(train, config, fn_args.custom_config)
    callbacks.append(keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir))
    model = build_model(config, image_shape)
    if config.train_args["warm_start"]:
        print(warm_start(model, config, config.train_args["warm_start"]))

    monitor = config.train_args["keep_best"] or dataset.best_metric
    if monitor != LAST:
        if monitor == "val_cer":
            callbacks.append(ValidationCer(lambda images: kind.read(model, images, config), evaluation))
        keep_best = KeepBest(monitor)
        callbacks.append(keep_best)

    def inputs(features, labels):
        return kind.training_inputs(features, labels), labels

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
                "kept_epoch": keep_best.best_epoch if monitor != LAST else config.train_args["epochs"],
                "kept_by": monitor,
            },
            f,
            indent=2,
        )
    kind.export(model, config, tf_transform_output, fn_args.serving_model_dir)
    save_weights(model, config, fn_args.serving_model_dir)
