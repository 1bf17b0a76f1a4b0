"""The Trainer's `run_fn`: builds the configured network, fits it on Transform's output, exports.

`custom_config` holds the experiment config (validated JSON, under "experiment") and the
dataset's trainer config (glyph bank paths: added by components.glyph_banks.Trainer); everything
that depends on the model kind or the dataset is looked up once in their registries. Training
figures (examples/s, history) are written to `training_metrics.json` in the model run directory,
for benchmarks and scripts.
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
from trainer.sample_predictions import sample_predictions
from trainer.warm_start import save_weights, warm_start


def _dataset(fn_args, files, tf_transform_output, batch_size: int, shuffle: bool):
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=LABEL_KEY,
            num_epochs=1,
            shuffle=shuffle,
            shuffle_seed=0,
        ),
        tf_transform_output.transformed_metadata.schema,
    )


def training_setup(fn_args, config, tf_transform_output, val_cer: bool) -> tuple:
    """(model, train, evaluation, callbacks) for `config`: the compiled network, its batches as
    the Keras model takes them, and the dataset's callbacks (plus `val_cer` in the logs if asked).
    The Trainer and each of the Tuner's trials train this way."""
    kind, dataset = MODEL_KINDS[config.model], DATASETS[config.dataset]
    keras.utils.set_random_seed(0)
    image_shape = tuple(tf_transform_output.transformed_feature_spec()[IMAGE_KEY].shape)
    batch_size = config.train_args["batch_size"]
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, batch_size, shuffle=True)
    evaluation = _dataset(
        fn_args, fn_args.eval_files, tf_transform_output, batch_size, shuffle=False
    )
    train, callbacks = dataset.training_data(train, config, fn_args.custom_config)
    model = build_model(config, image_shape)
    if val_cer:
        callbacks.append(ValidationCer(lambda images: kind.read(model, images, config), evaluation))

    def inputs(features, labels):
        return kind.training_inputs(features, labels), labels

    return model, train.map(inputs), evaluation.map(inputs), callbacks


def tuned(config, hyperparameters):
    """`config` with the Tuner's best values (fn_args.hyperparameters: a keras-tuner
    HyperParameters config) for the keys of its search space, if there are any."""
    if not hyperparameters:
        return config
    values = hyperparameters["values"]
    chosen = {
        key: value for key, value in values.items() if "." in key and not key.startswith("tuner/")
    }
    print(f"hyperparameters: {json.dumps(chosen, sort_keys=True)}")
    return config.with_values(chosen)


def run_fn(fn_args: FnArgs) -> None:
    config = tuned(
        ExperimentConfig.from_json(fn_args.custom_config["experiment"]), fn_args.hyperparameters
    )
    kind, dataset = MODEL_KINDS[config.model], DATASETS[config.dataset]
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    monitor = config.train_args["keep_best"] or dataset.best_metric
    model, train, evaluation, callbacks = training_setup(
        fn_args, config, tf_transform_output, val_cer=monitor == "val_cer"
    )
    callbacks.append(keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir))
    samples = _dataset(
        fn_args, fn_args.eval_files, tf_transform_output, config.train_args["batch_size"], False
    )
    callbacks += sample_predictions(kind, dataset, model, config, samples, fn_args.model_run_dir)
    if config.train_args["warm_start"]:
        print(warm_start(model, config, config.train_args["warm_start"]))
    if monitor != LAST:
        keep_best = KeepBest(monitor)
        callbacks.append(keep_best)

    trained_examples = tf.Variable(0, dtype=tf.int64, trainable=False)

    def count(features, labels):  # counts as it trains: no extra pass over the data
        trained_examples.assign_add(tf.shape(labels, out_type=tf.int64)[0])
        return features, labels

    train = train.map(count)
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
                "kept_epoch": keep_best.best_epoch
                if monitor != LAST
                else config.train_args["epochs"],
                "kept_by": monitor,
            },
            f,
            indent=2,
        )
    kind.export(model, config, tf_transform_output, fn_args.serving_model_dir)
    save_weights(model, config, fn_args.serving_model_dir)
