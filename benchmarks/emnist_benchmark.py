"""EMNIST character benchmark: accuracy, per-component wall time, Trainer vs plain Keras speed.

    python -m benchmarks.emnist_benchmark [--data-dir ../shared/data/emnist] [--epochs 5]

For each network it runs the whole pipeline (BeamDagRunner) on the official-format EMNIST files,
reads the run back from ML Metadata, then trains the same Keras model with a plain tf.data
pipeline outside TFX on the same TFRecords for the same epochs, in the same process, and prints
the figures as a Markdown table (docs/benchmarks.md records them).
"""

import argparse
import json
import os
import time
from pathlib import Path

import keras
import tensorflow as tf
import tensorflow_model_analysis as tfma

from data.features import EVAL_SPLIT, IMAGE_KEY, LABEL_KEY, TRAIN_SPLIT
from trainer import METRICS_FILE
from trainer.config import ExperimentConfig
from trainer.models import build_model
from training import run_experiment
from transform.preprocessing import decode_images

DEFAULT_DATA_DIR = os.environ.get(
    "EMNIST_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "emnist")
)


def plain_dataset(
    examples_dir: Path, split: str, batch_size: int, shuffle: bool
) -> tf.data.Dataset:
    """The raw TFRecords -> (normalized image, label) batches, with plain tf.data and no TFX."""
    files = sorted(str(p) for p in (examples_dir / split).glob("*.tfrecord.gz"))
    spec = {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=0)
    dataset = dataset.batch(batch_size).map(
        lambda records: _parse(records, spec), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _parse(records, spec):
    features = tf.io.parse_example(records, spec)
    return decode_images(features[IMAGE_KEY]), features[LABEL_KEY]


def plain_keras(config: ExperimentConfig, examples_dir: Path) -> dict:
    keras.utils.set_random_seed(0)
    batch_size = config.train_args["batch_size"]
    train = plain_dataset(examples_dir, TRAIN_SPLIT, batch_size, shuffle=True)
    model = build_model(config, (28, 28, 1))
    examples = sum(int(y.shape[0]) for _, y in train)
    started = time.perf_counter()
    model.fit(train, epochs=config.train_args["epochs"], verbose=2)
    seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(plain_dataset(examples_dir, EVAL_SPLIT, 512, False), verbose=0)
    return {
        "examples_per_second": examples * config.train_args["epochs"] / seconds,
        "accuracy": accuracy,
        "fit_seconds": seconds,
    }


def pipeline_run(config: ExperimentConfig, data_dir: str, root: Path) -> dict:
    args = run_experiment.parse_args(
        [config.to_json(), "--save", "--data-dir", data_dir, "--root", str(root)]
    )
    started = time.perf_counter()
    result = run_experiment.run(args)
    nodes = result["nodes"]
    evaluation = tfma.load_eval_result(nodes["Evaluator"].outputs["evaluation"][0].uri)
    overall = dict(evaluation.slicing_metrics)[()][""][""]
    model_run = Path(nodes["Trainer"].outputs["model_run"][0].uri)
    training = json.loads((model_run / METRICS_FILE).read_text())
    return {
        "examples_dir": result["examples_dir"],
        "wall_seconds": time.perf_counter() - started,
        "component_seconds": {n.node: n.seconds for n in nodes.values()},
        "accuracy": overall["sparse_categorical_accuracy"]["doubleValue"],
        "eval_examples": int(overall["example_count"]["doubleValue"]),
        "train_examples": training["train_examples_per_epoch"],
        "examples_per_second": training["examples_per_second"],
        "trainer_fit_seconds": training["fit_seconds"],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--root", default="artifacts/benchmark")
    parser.add_argument("--networks", nargs="+", default=["mlp", "lenet"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    if not Path(args.data_dir).exists():
        parser.error(f"--data-dir {args.data_dir} does not exist (set EMNIST_DIR)")

    results = {}
    for network in args.networks:
        config = ExperimentConfig.from_dict(
            {
                "network": network,
                "train_args": {"epochs": args.epochs, "batch_size": args.batch_size},
            }
        )
        tfx_figures = pipeline_run(config, args.data_dir, Path(args.root) / network)
        plain = plain_keras(config, Path(tfx_figures.pop("examples_dir")))
        results[network] = {"tfx": tfx_figures, "plain_keras": plain}

    print(json.dumps(results, indent=2))
    print(f"\nEMNIST ByClass, {args.epochs} epochs, batch {args.batch_size}\n")
    print(
        "| network | train ex | test ex | TFX test acc | plain acc | Trainer ex/s | plain ex/s | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for network, r in results.items():
        t, p = r["tfx"], r["plain_keras"]
        print(
            f"| {network} | {t['train_examples']} | {t['eval_examples']} | {t['accuracy']:.4f} "
            f"| {p['accuracy']:.4f} | {t['examples_per_second']:.0f} "
            f"| {p['examples_per_second']:.0f} "
            f"| {t['examples_per_second'] / p['examples_per_second']:.2f} |"
        )
    components = list(next(iter(results.values()))["tfx"]["component_seconds"])
    print("\n| component | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for component in components + ["whole run"]:
        cells = [
            r["tfx"]["wall_seconds"]
            if component == "whole run"
            else r["tfx"]["component_seconds"][component]
            for r in results.values()
        ]
        print(f"| {component} | " + " | ".join(f"{c:.1f} s" for c in cells) + " |")


if __name__ == "__main__":
    main()
