"""The line detector (issue 12, models): the FCN's shapes and arguments at any input size, the
model kind learning constructed pages, page augmentation keeping image and mask aligned, the
exported signatures and their refusals, and the pooled IoU metrics inside TFMA."""

import struct
import zlib
from pathlib import Path

import apache_beam as beam
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from scipy import ndimage

from common.pages import BACKGROUND, EVEN_LINE, LINE_PROBABILITIES, ODD_LINE, PAGE_CLASSES
from common.signatures import (
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    IMAGE_BYTES_INPUT,
    SERVING_SIGNATURE,
)
from data.features import IMAGE_KEY, LABEL_KEY
from evaluation.eval_configs import pages_eval_config
from evaluation.tfma_metrics import class_ious, pixel_confusion
from trainer.best_epoch import higher_is_better
from trainer.config import ConfigError, ExperimentConfig
from trainer.export import WARMUP_FILE
from trainer.models import MODEL_KINDS
from trainer.models.line_detector import LineDetectorModel
from trainer.networks import NETWORKS, check_input, network_defaults
from trainer.networks.line_detector_fcn import line_detector_fcn
from transform.page_augmentation import augment_pages, page_transforms

KIND = LineDetectorModel()
SMALL = {"filters": 8, "blocks": 3, "kernel_size": 5, "dilations": [2, 4]}  # field of view 73 px


def bar_pages(count: int, size: int = 64, seed: int = 0) -> tuple:
    """Pages of ragged ink bars (lines) at random heights and gaps, with their masks: bars
    alternate ODD_LINE / EVEN_LINE from the top. float32 [count, size, size, 1], int64
    [count, size, size]."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size, 1), np.float32)
    masks = np.zeros((count, size, size), np.int64)
    for page in range(count):
        top, line = int(rng.integers(2, 10)), 0
        while top + 8 < size - 2:
            height = int(rng.integers(4, 8))
            left, right = int(rng.integers(2, 12)), size - int(rng.integers(2, 12))
            ink = rng.uniform(size=(height, right - left)) > 0.4
            images[page, top : top + height, left:right, 0] = ink
            masks[page, top : top + height, left:right] = (ODD_LINE, EVEN_LINE)[line % 2]
            top, line = top + height + int(rng.integers(3, 9)), line + 1
    return images, masks


def compiled(input_shape=(64, 64, 1), **network_args) -> keras.Model:
    model = line_detector_fcn(input_shape, len(PAGE_CLASSES), **network_args)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=KIND.loss(), metrics=KIND.metrics())
    return model


# --- the network ---------------------------------------------------------------------------------


def test_registered_with_its_model_kind():
    assert NETWORKS["line_detector_fcn"] is line_detector_fcn
    assert isinstance(MODEL_KINDS["LineDetectorModel"], LineDetectorModel)
    assert MODEL_KINDS["LineDetectorModel"].networks == ("line_detector_fcn",)


def test_defaults_are_the_fsdl_fcn():
    assert network_defaults("line_detector_fcn") == {
        "filters": 16,
        "blocks": 7,
        "kernel_size": 7,
        "dilations": [3, 7],
    }
    model = line_detector_fcn((256, 256, 1), 3)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dilated = [c for c in convs if c.kernel_size == (7, 7)]
    assert [c.dilation_rate for c in dilated] == [(3, 3), (7, 7)] * 7
    assert {c.filters for c in dilated} == {16}
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    assert convs[-1].kernel_size == (1, 1) and convs[-1].filters == 3
    assert model.output_shape == (None, None, None, 3)


def test_network_args_shape_the_network():
    model = line_detector_fcn((64, 64, 1), 3, **SMALL)
    dilated = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (5, 5)
    ]
    assert [c.dilation_rate for c in dilated] == [(2, 2), (4, 4)] * 3
    assert {c.filters for c in dilated} == {8}
    one = line_detector_fcn((64, 64, 1), 3, blocks=1, dilations=[1, 2, 5])
    assert len([layer for layer in one.layers if isinstance(layer, keras.layers.Add)]) == 1
    assert (
        len([layer for layer in one.layers if isinstance(layer, keras.layers.Conv2D)]) == 5
    )  # 3 dilated + the shortcut + the classifier


@pytest.mark.parametrize("dilations", [[], [0, 2], [1.5], ["3"], [True]])
def test_bad_dilations_are_refused_naming_the_argument(dilations):
    with pytest.raises(ValueError, match="network_args.dilations"):
        check_input("line_detector_fcn", (64, 64, 1), None, {"dilations": dilations})


def test_config_defaults_and_refusals():
    config = ExperimentConfig.from_dict(
        {"model": "LineDetectorModel", "network_args": {"dilations": [1, 2, 4]}}
    )
    assert config.dataset == "EmnistPagesDataset" and config.network == "line_detector_fcn"
    assert config.network_args["dilations"] == [1, 2, 4]
    with pytest.raises(ConfigError, match="network_args.dilations"):
        ExperimentConfig.from_dict(
            {"model": "LineDetectorModel", "network_args": {"dilations": [0]}}
        )
    with pytest.raises(ConfigError, match="network_args.dilations: expected list"):
        ExperimentConfig.from_dict({"model": "LineDetectorModel", "network_args": {"dilations": 3}})
    tuned = ExperimentConfig.from_dict(
        {"model": "LineDetectorModel", "tune": {"space": {"network_args.filters": [8, 16]}}}
    )
    assert tuned.tune["objective"] == "val_mean_iou"  # the pages datasets' best_metric
    # The best epoch and the Tuner's objective: a higher IoU is better.
    assert higher_is_better("val_mean_iou") and not higher_is_better("val_loss")


@pytest.mark.parametrize("height,width", [(64, 64), (37, 101), (300, 20)])
def test_any_page_size_gives_per_pixel_probabilities(height, width):
    model = line_detector_fcn((64, 64, 1), 3, **SMALL)
    images = np.random.default_rng(0).uniform(size=(2, height, width, 1)).astype(np.float32)
    probabilities = model(images, training=False).numpy()
    assert probabilities.shape == (2, height, width, 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_the_detector_learns_constructed_pages():
    keras.utils.set_random_seed(0)
    images, masks = bar_pages(16)
    eval_images, eval_masks = bar_pages(8, seed=1)
    model = compiled(**SMALL)
    before = model.evaluate(eval_images, eval_masks, verbose=0, return_dict=True)
    history = model.fit(
        images,
        masks,
        validation_data=(eval_images, eval_masks),
        epochs=15,
        batch_size=4,
        verbose=0,
    ).history
    # Keras logs what the Trainer keeps the best epoch by (the dataset's best_metric).
    assert {"val_mean_iou", "val_pixel_accuracy", "val_iou_odd_line"} <= set(history)
    assert before["mean_iou"] < 0.4
    assert history["val_mean_iou"][-1] > 0.55  # measured 0.70 (background ~0.9, lines ~0.6)
    # Keras' mean IoU is the TFMA metric's pooled figure on the same predictions.
    predicted = model.predict(eval_images, verbose=0)
    ious = class_ious(pixel_confusion(eval_masks, predicted))
    logged = model.evaluate(eval_images, eval_masks, verbose=0, return_dict=True)
    assert logged["mean_iou"] == pytest.approx(ious.mean(), abs=1e-4)


# --- augmentation --------------------------------------------------------------------------------


def test_identity_and_pure_shift_transforms():
    size = tf.constant([10, 20])
    zero = tf.zeros([1])
    identity = page_transforms(size, tf.zeros([1, 2]), tf.ones([1]), zero, zero).numpy()
    np.testing.assert_allclose(identity, [[1, 0, 0, 0, 1, 0, 0, 0]], atol=1e-6)
    shift = page_transforms(size, tf.constant([[0.1, -0.2]]), tf.ones([1]), zero, zero).numpy()
    # Output (x, y) reads input (x - 2, y + 2): the page moves 2 pixels right and 2 up.
    np.testing.assert_allclose(shift, [[1, 0, -2, 0, 1, 2, 0, 0]], atol=1e-5)


def test_augmentation_keeps_image_and_mask_aligned():
    images, masks = bar_pages(8, size=96, seed=3)
    images = np.where(masks[..., None] > 0, 1.0, 0.0).astype(np.float32)  # solid lines
    moved, moved_masks = augment_pages(images, masks, seed=tf.constant([1, 2]))
    moved, moved_masks = moved.numpy(), moved_masks.numpy()
    assert moved.shape == images.shape and moved.dtype == np.float32
    assert moved_masks.shape == masks.shape and moved_masks.dtype == np.int64
    assert set(np.unique(moved_masks)) <= {BACKGROUND, ODD_LINE, EVEN_LINE}
    assert moved.min() >= 0 and moved.max() <= 1
    for page in range(len(images)):
        assert (moved_masks[page] != masks[page]).mean() > 0.01  # the geometry did change
        # Ink: above half the page's (dimmed) ink level. A mask one pixel off its 4-7 pixel
        # high bars would overlap them by about 0.7; only the resampled edges may differ.
        ink = moved[page, ..., 0] > 0.5 * moved[page].max()
        lines = moved_masks[page] > 0
        overlap = (ink & lines).sum() / (ink | lines).sum()
        assert overlap > 0.93, (page, overlap)
        # Nearest-neighbour labels: every moved line is still one line of one parity.
        components, count = ndimage.label(lines)
        assert count == len(np.unique(ndimage.label(masks[page] > 0)[0])) - 1
        for component in range(1, count + 1):
            assert len(np.unique(moved_masks[page][components == component])) == 1


def test_augmentation_is_reproducible_per_seed_and_varies_between_seeds():
    images, masks = bar_pages(4)
    first = augment_pages(images, masks, seed=tf.constant([5, 6]))
    again = augment_pages(images, masks, seed=tf.constant([5, 6]))
    other = augment_pages(images, masks, seed=tf.constant([7, 8]))
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[1], other[1])
    unseeded = augment_pages(images, masks)  # draws its own seed
    assert unseeded[0].shape == images.shape


# --- export --------------------------------------------------------------------------------------

S = 32


def _png(image: np.ndarray) -> bytes:
    return tf.io.encode_png(image).numpy()


def _huge_png(width: int, height: int) -> bytes:
    """A valid, tiny PNG header declaring `width` x `height` (its data is not needed to refuse)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    model = line_detector_fcn((S, S, 1), 3, filters=4, blocks=1, kernel_size=3)
    path = tmp_path_factory.mktemp("detector") / "1"
    KIND.export_for_images(model, None, tf.io.FixedLenFeature([S, S, 1], tf.float32), str(path))
    return path


def test_serving_default_labels_an_encoded_page_of_another_size(exported):
    serve = tf.saved_model.load(str(exported)).signatures[SERVING_SIGNATURE]
    page = np.full((90, 140, 1), 235, np.uint8)  # a light page with two dark lines
    page[20:30, 10:130] = 30
    page[50:60, 10:120] = 30
    outputs = serve(**{IMAGE_BYTES_INPUT: tf.constant([_png(page), _png(page[:40])])})
    assert set(outputs) == {LINE_PROBABILITIES}
    probabilities = outputs[LINE_PROBABILITIES]
    assert probabilities.dtype == tf.float32 and probabilities.shape == (2, S, S, 3)
    np.testing.assert_allclose(probabilities.numpy().sum(axis=-1), 1.0, rtol=1e-5)
    assert (exported / WARMUP_FILE).is_file()


def test_from_examples_reads_transformed_pages(exported):
    serve = tf.saved_model.load(str(exported)).signatures[EXAMPLES_SIGNATURE]
    image = np.random.default_rng(0).uniform(size=(S, S, 1)).astype(np.float32)
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=image.ravel())),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[0] * S * S)),
            }
        )
    )
    outputs = serve(**{EXAMPLES_INPUT: tf.constant([example.SerializeToString()])})
    assert outputs[LINE_PROBABILITIES].shape == (1, S, S, 3)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"not an image at all", "image"),
        (_huge_png(20000, 20000), "max_pixels"),
    ],
)
def test_bad_images_are_refused(exported, data, message):
    serve = tf.saved_model.load(str(exported)).signatures[SERVING_SIGNATURE]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(**{IMAGE_BYTES_INPUT: tf.constant([data])})


# --- the TFMA metrics ----------------------------------------------------------------------------

# Two 2x2 pages. Page A: truth [[0, 1], [2, 2]], predicted [[0, 1], [1, 2]];
# page B: truth [[0, 0], [0, 1]], predicted [[0, 0], [1, 1]].
TRUTHS = np.array([[[0, 1], [2, 2]], [[0, 0], [0, 1]]])
PREDICTED = np.array([[[0, 1], [1, 2]], [[0, 0], [1, 1]]])
# Pooled over both pages: background 3/4 (3 right, 1 false odd), odd line 2/4 (2 right, 1 false
# from an even pixel, 1 from a background pixel), even line 1/2: mean 7/12, accuracy 6/8. The
# mean of per-page mean IoUs would differ: page A (1 + 1/2 + 1/2) / 3, page B (2/3 + 1/2) / 2
# (no even line in it): 5/8.
EXPECTED = {
    "pixel_accuracy": 6 / 8,
    "mean_iou": (3 / 4 + 2 / 4 + 1 / 2) / 3,
    "iou_background": 3 / 4,
    "iou_odd_line": 2 / 4,
    "iou_even_line": 1 / 2,
}


def test_confusion_is_pooled_over_pages():
    probabilities = np.eye(3)[PREDICTED]
    confusion = sum(pixel_confusion(t, p) for t, p in zip(TRUTHS, probabilities))
    np.testing.assert_allclose(class_ious(confusion), [3 / 4, 2 / 4, 1 / 2])
    page_b = class_ious(pixel_confusion(TRUTHS[1], probabilities[1]))
    assert np.isnan(page_b[EVEN_LINE])  # absent from page B's truth and prediction


class _FixedDetector(tf.Module):
    """Returns one-hot `pages[index]` for each example's `index` feature."""

    def __init__(self, pages: np.ndarray):
        super().__init__()
        self._pages = tf.constant(pages, tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def from_examples(self, serialized):
        index = tf.io.parse_example(serialized, {"index": tf.io.FixedLenFeature([], tf.int64)})
        return {LINE_PROBABILITIES: tf.one_hot(tf.gather(self._pages, index["index"]), 3)}


CANDIDATE, BASELINE = "candidate", "baseline"


@pytest.fixture(scope="module")
def tfma_setup(tmp_path_factory) -> tuple:
    """(root, data location, {name: SavedModel}): the candidate predicts PREDICTED, the
    baseline (the latest blessed detector) is perfect."""
    root = tmp_path_factory.mktemp("tfma_pages")
    data = str(root / "pages.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for index, truth in enumerate(TRUTHS):
            feature = {
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=truth.ravel())),
                "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    models = {}
    for name, pages in ((CANDIDATE, PREDICTED), (BASELINE, TRUTHS)):
        module = _FixedDetector(pages)
        models[name] = str(root / name)
        tf.saved_model.save(
            module, models[name], signatures={EXAMPLES_SIGNATURE: module.from_examples}
        )
    return root, data, models


def _evaluate(setup, min_mean_iou: float, max_mean_iou_drop: float, output: str) -> str:
    root, data, models = setup
    eval_config = pages_eval_config(min_mean_iou, max_mean_iou_drop)
    for name in models:  # pages_eval_config's one model spec, for each model
        spec = eval_config.model_specs.add()
        spec.CopyFrom(eval_config.model_specs[0])
        spec.name, spec.is_baseline = name, name == BASELINE
    del eval_config.model_specs[0]
    output_path = str(root / output)
    tfma.run_model_analysis(
        eval_shared_model=[
            tfma.default_eval_shared_model(path, model_name=name, eval_config=eval_config)
            for name, path in models.items()
        ],
        eval_config=eval_config,
        data_location=data,
        output_path=output_path,
        pipeline_options=beam.options.pipeline_options.PipelineOptions(["--runner=FnApiRunner"]),
    )
    return output_path


def test_tfma_pools_iou_over_pages_and_gates_on_mean_iou(tfma_setup):
    # Mean IoU 7/12 = 0.583, 5/12 below the perfect baseline's.
    passing = _evaluate(tfma_setup, min_mean_iou=0.55, max_mean_iou_drop=0.45, output="passing")
    ((_, metrics),) = tfma.load_eval_result(passing, model_name=CANDIDATE).slicing_metrics
    figures = {name: value["doubleValue"] for name, value in metrics[""][""].items()}
    for name, value in EXPECTED.items():
        assert figures[name] == pytest.approx(value), name
    assert figures["example_count"] == 2
    assert tfma.load_validation_result(passing).validation_ok

    failing = _evaluate(tfma_setup, min_mean_iou=0.6, max_mean_iou_drop=0.4, output="failing")
    validation = tfma.load_validation_result(failing)
    assert not validation.validation_ok
    (per_slice,) = validation.metric_validations_per_slice
    failures = {(f.metric_key.name, f.metric_key.is_diff) for f in per_slice.failures}
    assert failures == {("mean_iou", False), ("mean_iou", True)}  # below the bound, too big a drop
