"""Exported line models: the `serving_default` / `from_examples` contract of each model kind, the
image handling around it (other sizes, inverted images) and LinePredictor on top of it."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common.signatures import EXAMPLES_SIGNATURE, IMAGE_BYTES_INPUT, SERVING_SIGNATURE
from data.features import IMAGE_KEY
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from data.vocabulary import PAD_INDEX
from evaluation.text_metrics import labels_to_text
from serving.predictors import LinePredictor, PredictionError
from trainer.config import ExperimentConfig
from trainer.models import MODEL_KINDS, build_model
from transform.line_synthesis import GlyphBank, synthesize_lines

MAX_LENGTH = 3
WIDTH = MAX_LENGTH * 28
IMAGE_SHAPE = (28, WIDTH, 1)
# What Transform's transformed_feature_spec() gives for line images.
TRANSFORMED_SPEC = {IMAGE_KEY: tf.io.FixedLenFeature(list(IMAGE_SHAPE), tf.float32)}
NETWORKS = {
    "LineModel": "line_cnn_all_conv",
    "LineModelCtc": "line_lstm_ctc",
    "LineModelAttention": "line_attention",
}
# Each kind to export: (model, network_args, model_args). Small networks keep export fast.
KINDS: dict[str, tuple[str, dict, dict]] = {
    "per_position": ("LineModel", {"conv_dim": 16, "fc_dim": 64, "dropout": 0.0}, {}),
    "ctc_greedy": ("LineModelCtc", {"conv_dim": 8, "lstm_dim": 16}, {}),
    "ctc_beam": (
        "LineModelCtc",
        {"conv_dim": 8, "lstm_dim": 16},
        {"decoding": "beam_search", "beam_width": 4},
    ),
    "attention": ("LineModelAttention", {"model_dim": 16, "num_heads": 2, "num_layers": 1}, {}),
}
ALPHABET = "0123"
NUM_LINES = 32


def line_config(model: str, network_args: dict, model_args: dict) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "dataset": "EmnistLinesDataset",
            "model": model,
            "network": NETWORKS[model],
            "dataset_args": {"max_length": MAX_LENGTH},
            "network_args": network_args,
            "model_args": model_args,
            "train_args": {"learning_rate": 3e-3},
        }
    )


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def example(image_u8: np.ndarray) -> bytes:
    """A serialized tf.Example holding the transformed (float) image of a uint8 line."""
    values = (image_u8.astype(np.float32) / 255).reshape(-1)
    feature = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(
        features=tf.train.Features(feature={IMAGE_KEY: feature})
    ).SerializeToString()


def cropped(image_u8: np.ndarray) -> np.ndarray:
    """The line cut right after its last inked column: narrower, same pixels once left-aligned."""
    return image_u8[:, : int(np.flatnonzero(image_u8.max(axis=0))[-1]) + 1]


def upscaled(image_u8: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(image_u8, 2, axis=0), 2, axis=1)


def serve(model, images: list) -> dict:
    outputs = model.signatures[SERVING_SIGNATURE](
        **{IMAGE_BYTES_INPUT: tf.constant([png(image) for image in images])}
    )
    return {key: value.numpy() for key, value in outputs.items()}


def from_examples(model, images: list) -> dict:
    outputs = model.signatures[EXAMPLES_SIGNATURE](
        examples=tf.constant([example(image) for image in images])
    )
    return {key: value.numpy() for key, value in outputs.items()}


@pytest.fixture(scope="module")
def lines():
    """32 synthesized lines of 1-3 characters over "0123": (texts, uint8 images [32, 28, 84],
    labels [32, 4])."""
    images, labels, _ = read_split(SAMPLE_DIR, "train")
    bank = GlyphBank(images, labels)
    rng = np.random.default_rng(0)
    texts = [
        "".join(rng.choice(list(ALPHABET), rng.integers(1, MAX_LENGTH + 1)))
        for _ in range(NUM_LINES)
    ]
    drawn, line_labels = synthesize_lines(
        tf.constant(texts), tf.range(NUM_LINES, dtype=tf.int64), bank, MAX_LENGTH
    )
    # Rounded to uint8 once, so training, PNGs and tf.Examples all see exactly these pixels.
    return texts, np.round(drawn.numpy() * 255).astype(np.uint8), line_labels.numpy()


def export(kind: str, lines, tmp_path_factory, epochs: int = 0):
    """(kind, config, model name directory, loaded SavedModel), trained `epochs` on the lines."""
    model_name, network_args, model_args = KINDS[kind]
    config = line_config(model_name, network_args, model_args)
    keras.utils.set_random_seed(0)
    model = build_model(config, IMAGE_SHAPE)
    if epochs:
        _, images, labels = lines
        history = model.fit(
            images[..., None].astype(np.float32) / 255,
            labels,
            epochs=epochs,
            batch_size=8,
            verbose=0,
        )
        losses = history.history["loss"]
        assert losses[-1] < 0.1 * losses[0], losses
    # A versioned directory, as the Pusher writes it; LinePredictor resolves the newest version.
    model_dir = tmp_path_factory.mktemp(kind) / "line_model"
    MODEL_KINDS[config.model].export_for_images(
        model, config, TRANSFORMED_SPEC[IMAGE_KEY], str(model_dir / "1")
    )
    return kind, config, model_dir, tf.saved_model.load(str(model_dir / "1"))


@pytest.fixture(scope="module")
def trained_per_position(lines, tmp_path_factory):
    """The per-position model trained until it reads its 32 training lines, exported."""
    return export("per_position", lines, tmp_path_factory, epochs=20)


@pytest.fixture(scope="module", params=sorted(KINDS))
def exported(request, lines, tmp_path_factory):
    """Each kind exported; untrained (enough for the contract) except the per-position model."""
    if request.param == "per_position":
        return request.getfixturevalue("trained_per_position")
    return export(request.param, lines, tmp_path_factory)


def decoded_length(config: ExperimentConfig) -> int:
    """Per-position and attention models decode max_length positions; CTC one per time step."""
    if config.model != "LineModelCtc":
        return MAX_LENGTH
    args = config.network_args
    return (WIDTH - args["window_width"]) // args["window_stride"] + 1


# --- the signature contract ----------------------------------------------------------------------


def test_signatures_take_image_bytes_and_examples(exported):
    _, _, _, model = exported
    serving = model.signatures[SERVING_SIGNATURE]
    _, inputs = serving.structured_input_signature
    assert list(inputs) == [IMAGE_BYTES_INPUT]
    assert inputs[IMAGE_BYTES_INPUT].dtype == tf.string
    assert inputs[IMAGE_BYTES_INPUT].shape.as_list() == [None]
    assert set(serving.structured_outputs) == {
        "text",
        "confidence",
        "decoded",
        "character_confidences",
    }
    _, example_inputs = model.signatures[EXAMPLES_SIGNATURE].structured_input_signature
    assert [spec.dtype for spec in example_inputs.values()] == [tf.string]


def test_outputs_types_shapes_and_padding(exported, lines):
    _, config, _, model = exported
    _, images, _ = lines
    outputs = serve(model, list(images[:5]))
    text, confidence, decoded = outputs["text"], outputs["confidence"], outputs["decoded"]
    assert text.dtype == object and text.shape == (5,)
    assert confidence.dtype == np.float32 and confidence.shape == (5,)
    assert ((confidence >= 0) & (confidence <= 1)).all(), confidence
    assert decoded.dtype == np.int64 and decoded.shape == (5, decoded_length(config))
    assert ((decoded == -1) | ((decoded >= 0) & (decoded < PAD_INDEX))).all(), decoded
    for row in decoded:  # -1 only as right-padding
        padding = np.flatnonzero(row == -1)
        assert (row[padding[0] :] == -1).all() if len(padding) else True, row
    # text is exactly the decoded characters.
    assert [t.decode("utf-8") for t in text] == [labels_to_text(row) for row in decoded]


def test_lines_of_other_sizes_are_accepted_and_read_alike(exported, lines):
    _, config, _, model = exported
    _, images, _ = lines
    full = serve(model, list(images[:4]))
    # One batch mixing sizes: narrower crops and 2x upscales.
    mixed = serve(
        model, [cropped(image) for image in images[:4]] + [upscaled(image) for image in images[:4]]
    )
    assert mixed["decoded"].shape == (8, decoded_length(config))
    assert ((mixed["confidence"] >= 0) & (mixed["confidence"] <= 1)).all()
    # A crop of the trailing black columns leaves the same pixels after left-aligned padding.
    np.testing.assert_array_equal(mixed["decoded"][:4], full["decoded"])
    np.testing.assert_allclose(mixed["confidence"][:4], full["confidence"], rtol=1e-4, atol=1e-9)
    assert [labels_to_text(row) for row in mixed["decoded"]] == [
        t.decode("utf-8") for t in mixed["text"]
    ]


def test_dark_ink_on_white_reads_like_white_on_dark(exported, lines):
    _, _, _, model = exported
    _, images, _ = lines
    normal = serve(model, list(images[:6]))
    inverted = serve(model, [255 - image for image in images[:6]])
    np.testing.assert_array_equal(inverted["decoded"], normal["decoded"])
    np.testing.assert_array_equal(inverted["text"], normal["text"])
    np.testing.assert_allclose(inverted["confidence"], normal["confidence"], rtol=1e-4, atol=1e-9)


def test_examples_signature_matches_serving_on_the_same_pixels(exported, lines):
    _, _, _, model = exported
    _, images, _ = lines
    by_png = serve(model, list(images[:6]))
    by_example = from_examples(model, list(images[:6]))
    np.testing.assert_array_equal(by_example["decoded"], by_png["decoded"])
    np.testing.assert_array_equal(by_example["text"], by_png["text"])
    np.testing.assert_allclose(by_example["confidence"], by_png["confidence"], rtol=1e-4, atol=1e-9)


def test_line_predictor_reads_png_files_and_names_unreadable_ones(exported, lines, tmp_path):
    _, _, model_dir, model = exported
    _, images, _ = lines
    path = tmp_path / "line.png"
    path.write_bytes(png(images[0]))
    predictor = LinePredictor(model_dir)  # the model name directory: resolves version 1
    text, confidence = predictor.predict(path)
    assert isinstance(text, str) and isinstance(confidence, float)
    assert 0 <= confidence <= 1
    expected = serve(model, [images[0]])
    assert text == expected["text"][0].decode("utf-8")
    assert confidence == pytest.approx(float(expected["confidence"][0]), rel=1e-5, abs=1e-12)
    assert predictor.predict(str(path)) == (text, confidence)

    not_an_image = tmp_path / "scan_of_line.png"
    not_an_image.write_text("no pixels here")
    with pytest.raises(PredictionError, match=r"scan_of_line\.png"):
        predictor.predict(not_an_image)


# --- content: a trained model read through the whole serving path ------------------------------


def test_trained_per_position_model_reads_its_training_lines(trained_per_position, lines, tmp_path):
    _, _, model_dir, _ = trained_per_position
    texts, images, _ = lines
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"line_{i}.png")
        paths[-1].write_bytes(png(image))
    predictor = LinePredictor(model_dir)
    read = [text for text, _ in predictor.predict_batch(paths)]
    assert np.mean([r == t for r, t in zip(read, texts)]) >= 0.8, list(zip(texts, read))
    # Dark ink on white paper, twice the size: still read.
    read_scan = [
        text for text, _ in predictor.predict_batch([upscaled(255 - image) for image in images])
    ]
    assert np.mean([r == t for r, t in zip(read_scan, texts)]) >= 0.75, list(zip(texts, read_scan))
