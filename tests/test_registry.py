"""Every registered dataset and model kind works end to end without a pipeline: the dataset
prepares its examples, its Transform runs (tf.Transform on Beam, in process) with its
custom_config, each model kind that reads that dataset builds from a config, trains one step on a
tiny batch and exports a SavedModel whose `serving_default` reads an encoded image."""

import functools
import importlib
import io
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from line_fixtures import write_text_pages
from PIL import Image
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx.utils import io_utils

from common.signatures import IMAGE_BYTES_INPUT, SERVING_SIGNATURE
from data.features import TRAIN_SPLIT
from pipeline.tasks import SCHEMA_DIR, task_for
from trainer.config import ExperimentConfig
from trainer.datasets import DATASETS
from trainer.models import MODEL_KINDS, build_model

# Small enough to run in seconds; every other argument is the dataset's default.
TINY_DATASET_ARGS: dict[str, dict[str, object]] = {
    "EmnistLinesDataset": {"max_length": 4, "num_train": 8, "num_eval": 4},
    "EmnistPagesDataset": {"page_size": 32, "num_train": 8, "num_eval": 4, "max_lines": 4},
}
# Real handwriting datasets read a folder of fixture pages in their own format.
HANDWRITING_ARGS = {"max_length": 16, "height": 32, "max_width": 512, "eval_fraction": 0.25}
PAGE_ARGS = {"page_size": 32, "eval_fraction": 0.25}
BATCH = 4
CASES = [
    (dataset, kind)
    for dataset in DATASETS
    for kind, k in MODEL_KINDS.items()
    if k.reads == DATASETS[dataset].provides
]


def test_every_kind_and_dataset_has_a_case():
    assert {kind for _, kind in CASES} == set(MODEL_KINDS)
    assert {dataset for dataset, _ in CASES} == set(DATASETS)


def _raw_batch(examples_dir, schema: schema_pb2.Schema) -> list:
    """The first BATCH train examples as instance dicts, as ExampleGen would hand them on."""
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    files = tf.io.gfile.glob(f"{examples_dir}/{TRAIN_SPLIT}/*")
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(BATCH)
    instances = []
    for record in records:
        parsed = tf.io.parse_single_example(record, spec)
        instances.append({key: value.numpy() for key, value in parsed.items()})
    return instances


@functools.cache
def _transformed(dataset_name: str, work_dir: str):
    """(config, TFTransformOutput, raw batch) of the dataset, Transform run in process."""
    dataset = DATASETS[dataset_name]
    args = TINY_DATASET_ARGS.get(dataset_name, {})
    if hasattr(dataset, "format"):
        args = {
            **(PAGE_ARGS if dataset.provides == "pages" else HANDWRITING_ARGS),
            "path": str(write_text_pages(Path(work_dir) / "src", dataset.format)),
        }
    config = ExperimentConfig.from_dict(
        {
            "dataset": dataset_name,
            "dataset_args": args,
            "model": next(k for d, k in CASES if d == dataset_name),
        }
    )
    examples_dir, resources = dataset.prepare(config, None, work_dir)
    task = task_for(config, resources, SCHEMA_DIR)
    custom_config = task.transform_config
    if task.glyph_examples:  # what the pipeline's GlyphBanks step does
        from components.glyph_banks import SPLITS, bank_paths, build_glyph_banks

        build_glyph_banks([f"{task.glyph_examples}/{s}" for s in SPLITS], f"{work_dir}/banks")
        custom_config = {**custom_config, "glyph_banks": bank_paths(f"{work_dir}/banks")}
    schema = io_utils.parse_pbtxt_file(task.schema_file, schema_pb2.Schema())
    raw = _raw_batch(examples_dir, schema)
    module, name = task.preprocessing_fn.rsplit(".", 1)
    preprocessing_fn = getattr(importlib.import_module(module), name)
    if custom_config:
        preprocessing_fn = functools.partial(preprocessing_fn, custom_config=custom_config)
    out = f"{work_dir}/transform_fn"
    metadata = dataset_metadata.DatasetMetadata(schema)
    with beam.Pipeline(argv=["--runner=FnApiRunner"]) as pipeline:
        with tft_beam.Context(temp_dir=f"{work_dir}/tmp", force_tf_compat_v1=False):
            instances = pipeline | beam.Create(raw)
            transform_fn = (instances, metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
            _ = transform_fn | tft_beam.WriteTransformFn(out)
    # The raw schema, as TFX's Transform writes it beside the transform graph.
    metadata_io.write_metadata(metadata, f"{out}/{tft.TFTransformOutput.RAW_METADATA_DIR}")
    return config, tft.TFTransformOutput(out), raw


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("dataset_name,kind_name", CASES)
def test_kind_trains_a_step_and_exports_a_model_that_reads_an_image(
    dataset_name, kind_name, tmp_path_factory
):
    work_dir = str(tmp_path_factory.getbasetemp() / f"registry-{dataset_name}")
    base, tf_transform_output, raw = _transformed(dataset_name, work_dir)
    kind = MODEL_KINDS[kind_name]
    config = ExperimentConfig.from_dict(
        {
            "dataset": dataset_name,
            "dataset_args": base.dataset_args,
            "model": kind_name,
            "train_args": {"epochs": 1, "batch_size": BATCH},
        }
    )
    batch = {key: tf.constant(np.stack([example[key] for example in raw])) for key in raw[0]}
    features = tf_transform_output.transform_features_layer()(batch)
    labels = features.pop("label")
    image_shape = tuple(features["image"].shape[1:])
    assert image_shape == DATASETS[dataset_name].image_shape(config.dataset_args)

    model = build_model(config, image_shape)
    history = model.fit(kind.training_inputs(features, labels), labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    path = str(tmp_path_factory.mktemp(kind_name) / "1")
    kind.export(model, config, tf_transform_output, path)
    serve = tf.saved_model.load(path).signatures[SERVING_SIGNATURE]
    image = np.full((28, 28 * 3), 255, np.uint8)
    image[8:20, 10:70] = 0  # a dark stroke on white, as a user's scan would be
    outputs = serve(**{IMAGE_BYTES_INPUT: tf.constant([_png(image), _png(image[:, :28])])})
    if "line_probabilities" in outputs:  # the line detector: per-pixel class probabilities
        probabilities = outputs["line_probabilities"].numpy()
        assert probabilities.shape == (2, *image_shape[:2], 3)
        assert np.allclose(probabilities.sum(axis=-1), 1, atol=1e-4)
        return
    text_key = "text" if "text" in outputs else "character"
    assert outputs[text_key].shape[0] == 2 and outputs[text_key].dtype == tf.string
    confidence = outputs["confidence"].numpy()
    assert confidence.shape == (2,) and ((confidence >= 0) & (confidence <= 1)).all()
