"""The ensemble of two line models: how it combines (averaged CTC posteriors or a per-line pick by
confidence), that it is never worse than its members on lines they err on differently, that it is
a line model to every client (signatures, limits, warm-up), the pipeline step and the command
line, and the errors for members it cannot combine."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from common.signatures import (
    CHARACTER_CONFIDENCES,
    EXAMPLES_SIGNATURE,
    IMAGE_BYTES_INPUT,
    SERVING_SIGNATURE,
)
from components.ensemble import COMBINATION, resolve_source, write_ensemble
from data.features import IMAGE_KEY, LABEL_KEY, LENGTH_KEY
from data.sample import SAMPLE_DIR
from data.tfrecords import read_split
from data.vocabulary import NUM_LINE_CLASSES, PAD_INDEX
from evaluation.text_metrics import character_error_rate, labels_to_text
from serving.predictors import LinePredictor
from trainer.ensemble import (
    AVERAGE,
    ENSEMBLE_FILE,
    PICK,
    EnsembleError,
    average_reading,
    build_ensemble,
    pick_reading,
)
from trainer.export import CTC_POSTERIORS, WARMUP_FILE, export_untrained_line_model
from transform.line_synthesis import GlyphBank, synthesize_lines

MAX_LENGTH = 3
CTC = {"conv_dim": 8, "lstm_dim": 16}
# Member configs: two aligned CTC models, one CTC model of another stride (more time steps), a
# per-position model, and a CTC model of longer lines (another image width).
MEMBERS = {
    "ctc_a": ("LineModelCtc", "line_lstm_ctc", CTC, MAX_LENGTH, 1),
    "ctc_b": ("LineModelCtc", "line_lstm_ctc", CTC, MAX_LENGTH, 2),
    "ctc_stride": (
        "LineModelCtc",
        "line_lstm_ctc",
        {**CTC, "window_width": 20, "window_stride": 10},
        MAX_LENGTH,
        3,
    ),
    "per_position": ("LineModel", "line_cnn_all_conv", {"conv_dim": 8, "fc_dim": 16}, 3, 4),
    "ctc_wide": ("LineModelCtc", "line_lstm_ctc", CTC, MAX_LENGTH + 1, 5),
}


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> dict:
    """Each member exported untrained (random weights of its own seed) as version 1."""
    root = tmp_path_factory.mktemp("members")
    paths = {}
    for name, (model, network, network_args, max_length, seed) in MEMBERS.items():
        config = {
            "dataset": "EmnistLinesDataset",
            "model": model,
            "network": network,
            "dataset_args": {"max_length": max_length},
            "network_args": network_args,
        }
        paths[name] = export_untrained_line_model(config, root / name / "1", seed=seed)
    return paths


@pytest.fixture(scope="module")
def lines() -> tuple:
    """8 drawn lines of 1-3 characters of "0123": (texts, uint8 images [8, 28, 84])."""
    images, labels, _ = read_split(SAMPLE_DIR, "train")
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("0123"), rng.integers(1, MAX_LENGTH + 1))) for _ in range(8)]
    drawn, _ = synthesize_lines(
        tf.constant(texts), tf.range(8, dtype=tf.int64), GlyphBank(images, labels), MAX_LENGTH
    )
    return texts, np.round(drawn.numpy() * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ensembles(members, tmp_path_factory) -> dict:
    """{name: (record, ensemble dir)} of the averaging and the two picking ensembles."""
    root = tmp_path_factory.mktemp("ensembles")
    pairs = {
        "average": ("ctc_a", "ctc_b"),
        "pick_stride": ("ctc_a", "ctc_stride"),
        "pick_kind": ("ctc_a", "per_position"),
    }
    return {
        name: (build_ensemble(members[a], members[b], str(root / name / "1")), root / name / "1")
        for name, (a, b) in pairs.items()
    }


def pngs(images) -> tf.Tensor:
    return tf.constant([tf.io.encode_png(image[..., None]).numpy() for image in images])


def serialized_examples(images, texts) -> list:
    """Transformed line examples as the Evaluator reads them: image, label, length."""
    from data.vocabulary import LINE_CHARACTERS

    result = []
    for image, text in zip(images, texts):
        label = [LINE_CHARACTERS.index(c) for c in text] + [PAD_INDEX] * (MAX_LENGTH - len(text))
        feature = {
            IMAGE_KEY: tf.train.Feature(
                float_list=tf.train.FloatList(value=(image.astype(np.float32) / 255).ravel())
            ),
            LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=label)),
            LENGTH_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[len(text)])),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        result.append(example.SerializeToString())
    return result


def serve(path, images) -> dict:
    outputs = tf.saved_model.load(str(path)).signatures[SERVING_SIGNATURE](
        **{IMAGE_BYTES_INPUT: pngs(images)}
    )
    return {key: value.numpy() for key, value in outputs.items()}


def greedy(probabilities: np.ndarray) -> list:
    """Greedy CTC readings of [B, T, classes] posteriors, computed independently in numpy."""
    texts = []
    for best in probabilities.argmax(-1):
        collapsed = [c for i, c in enumerate(best) if i == 0 or c != best[i - 1]]
        texts.append(labels_to_text([c for c in collapsed if c != PAD_INDEX]))
    return texts


# --- combinations -----------------------------------------------------------------------------


def test_aligned_ctc_members_are_averaged_and_decoded_once(members, ensembles, lines):
    record, path = ensembles["average"]
    assert record["combination"] == AVERAGE, record
    _, images = lines
    ensemble = tf.saved_model.load(str(path))
    first, second = (tf.saved_model.load(members[m]) for m in ("ctc_a", "ctc_b"))
    batch = pngs(images)
    mean = (first.ctc_posteriors(batch).numpy() + second.ctc_posteriors(batch).numpy()) / 2
    np.testing.assert_allclose(ensemble.ctc_posteriors(batch).numpy(), mean, atol=1e-6)
    outputs = serve(path, images)
    assert [t.decode() for t in outputs["text"]] == greedy(mean)
    np.testing.assert_allclose(outputs["confidence"], mean.max(-1).min(-1), atol=1e-6)
    by_example = ensemble.signatures[EXAMPLES_SIGNATURE](
        examples=tf.constant(serialized_examples(images, lines[0]))
    )
    np.testing.assert_array_equal(by_example["decoded"].numpy(), outputs["decoded"])


@pytest.mark.parametrize("name, reason", [("pick_stride", "do not align"), ("pick_kind", "no CTC")])
def test_members_that_do_not_align_are_picked_by_confidence(
    members, ensembles, lines, name, reason
):
    record, path = ensembles[name]
    assert record["combination"] == PICK and reason in record["reason"], record
    _, images = lines
    first, second = (serve(p, images) for p in record["members"])
    outputs = serve(path, images)
    take_first = first["confidence"] >= second["confidence"]
    for i, chosen in enumerate(take_first):
        member = first if chosen else second
        assert outputs["text"][i] == member["text"][i]
        assert outputs["confidence"][i] == member["confidence"][i]
        length = member["decoded"].shape[1]
        np.testing.assert_array_equal(outputs["decoded"][i, :length], member["decoded"][i])
        assert (outputs["decoded"][i, length:] == -1).all()
    width = max(first["decoded"].shape[1], second["decoded"].shape[1])
    assert outputs["decoded"].shape == outputs[CHARACTER_CONFIDENCES].shape == (len(images), width)


# --- no worse than its members on lines they err on differently -------------------------------


def _posteriors(paths: list, wrong_steps: list) -> np.ndarray:
    """Posteriors [B, T, classes] that read each path, except at its `wrong_steps`, where a wrong
    class narrowly beats the right one."""
    steps = max(len(p) for p in paths)
    result = np.full((len(paths), steps, NUM_LINE_CLASSES), 0.01 / NUM_LINE_CLASSES, np.float32)
    for line, (path, wrong) in enumerate(zip(paths, wrong_steps)):
        for step, right in enumerate(path):
            result[line, step, right] += 0.4 if step in wrong else 0.9
            if step in wrong:
                result[line, step, (right + 7) % PAD_INDEX] += 0.5
    return result / result.sum(-1, keepdims=True)


def test_averaging_reads_right_what_each_member_misreads_somewhere():
    blank = PAD_INDEX
    truth = ["01", "23", "3", "10"]
    paths = [[0, blank, 1, blank], [2, blank, 3, blank], [3, blank, blank, blank], [1, 1, 0, 0]]
    first = _posteriors(paths, [{0}, set(), {2}, set()])  # wrong on lines 0 and 2
    second = _posteriors(paths, [set(), {2}, set(), {0}])  # wrong on lines 1 and 3
    cers = {}
    for name, probabilities in (("first", first), ("second", second)):
        cers[name] = character_error_rate(truth, greedy(probabilities))
    outputs = average_reading(tf.constant(first), tf.constant(second))
    cers["ensemble"] = character_error_rate(truth, [t.decode() for t in outputs["text"].numpy()])
    assert cers["first"] > 0 and cers["second"] > 0, cers
    assert cers["ensemble"] == 0, cers


def _reading(texts: list, confidences: list, length: int) -> dict:
    from data.vocabulary import LINE_CHARACTERS

    decoded = [[LINE_CHARACTERS.index(c) for c in t] + [-1] * (length - len(t)) for t in texts]
    characters = [[c] * len(t) + [-1.0] * (length - len(t)) for t, c in zip(texts, confidences)]
    return {
        "text": tf.constant(texts),
        "confidence": tf.constant(confidences, tf.float32),
        "decoded": tf.constant(decoded, tf.int64),
        CHARACTER_CONFIDENCES: tf.constant(characters, tf.float32),
    }


def test_picking_keeps_the_surer_reading_of_each_line():
    truth = ["ab", "cd", "ef", "gh"]
    first = _reading(["ab", "cd", "xf", "gx"], [0.9, 0.8, 0.3, 0.2], 5)  # unsure where wrong
    second = _reading(["ax", "xd", "ef", "gh"], [0.4, 0.1, 0.7, 0.6], 3)
    outputs = {key: value.numpy() for key, value in pick_reading(first, second).items()}
    read = [t.decode() for t in outputs["text"]]
    cers = [
        character_error_rate(truth, [t.decode() for t in r["text"].numpy()])
        for r in (first, second)
    ]
    assert min(cers) > 0 and character_error_rate(truth, read) == 0
    assert [labels_to_text(row) for row in outputs["decoded"]] == read
    np.testing.assert_allclose(outputs["confidence"], [0.9, 0.8, 0.7, 0.6])
    np.testing.assert_allclose(outputs[CHARACTER_CONFIDENCES][2], [0.7, 0.7, -1, -1, -1])


# --- a line model to every client -------------------------------------------------------------


def _signature_specs(path) -> dict:
    model = tf.saved_model.load(str(path))
    return {
        name: (
            model.signatures[name].structured_input_signature,
            {
                k: (v.dtype, v.shape.as_list())
                for k, v in model.signatures[name].structured_outputs.items()
            },
        )
        for name in model.signatures
    }


@pytest.mark.parametrize("name", ["average", "pick_kind"])
def test_signatures_limits_and_warmup_are_a_line_models(members, ensembles, lines, name):
    _, path = ensembles[name]
    specs, member = _signature_specs(path), _signature_specs(members["ctc_a"])
    assert set(specs) == set(member) == {SERVING_SIGNATURE, EXAMPLES_SIGNATURE}
    for signature in specs:
        assert specs[signature][0] == member[signature][0]  # the same inputs
        outputs, member_outputs = specs[signature][1], member[signature][1]
        assert set(outputs) == set(member_outputs)
        assert {k: v[0] for k, v in outputs.items()} == {k: v[0] for k, v in member_outputs.items()}
    assert (path / WARMUP_FILE).exists()
    model = tf.saved_model.load(str(path))
    _, images = lines
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 64 images"):
        model.signatures[SERVING_SIGNATURE](image_bytes=pngs([images[0]] * 65))
    bomb = tf.io.encode_png(tf.zeros([5000, 4000, 1], tf.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_pixels"):
        model.signatures[SERVING_SIGNATURE](image_bytes=tf.constant([bomb]))
    # The predictor of any line model reads it, from the model name directory.
    text, confidence = LinePredictor(path.parent).predict(images[0])
    assert text == serve(path, images[:1])["text"][0].decode() and 0 <= confidence <= 1


# --- the pipeline step and the command line ---------------------------------------------------


def test_component_writes_a_model_artifact_the_evaluator_reads(members, tmp_path):
    inputs = []
    for name in ("ctc_a", "ctc_b"):
        artifact = standard_artifacts.Model()
        artifact.uri = members[name]
        inputs.append(artifact)
    output = standard_artifacts.Model()
    output.uri = str(tmp_path / "ensemble")
    record = write_ensemble(*inputs, output)
    saved = path_utils.serving_model_path(output.uri)
    assert json.loads((Path(saved) / ENSEMBLE_FILE).read_text()) == record
    assert output.get_string_custom_property(COMBINATION) == AVERAGE
    assert hasattr(tf.saved_model.load(saved), CTC_POSTERIORS)
    # An ensemble is itself a member another ensemble can average.
    assert (
        build_ensemble(saved, members["ctc_a"], str(tmp_path / "nested"))["combination"] == AVERAGE
    )


def test_command_line_prints_each_members_cer_and_pushes_the_ensemble(
    members, lines, tmp_path, capsys
):
    from training.run_ensemble import main

    texts, images = lines
    split = tmp_path / "examples" / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data.gz"), "GZIP") as writer:
        for record in serialized_examples(images, texts):
            writer.write(record)
    root = tmp_path / "root"
    argv = [members["ctc_a"], members["per_position"], "--examples-dir", str(split.parent)]
    assert main([*argv, "--root", str(root), "--save", "--max-cer", "100"]) == 0
    printed = capsys.readouterr().out.splitlines()
    for name, line in zip(("ctc_a", "per_position"), printed[1:3]):
        read = [t.decode() for t in serve(members[name], images)["text"]]
        assert line.startswith(f"model_{'ab'[name != 'ctc_a']} ({members[name]})"), line
        assert f"cer {character_error_rate(texts, read):.4f}" in line, (line, read)
    ensemble_read = [t.decode() for t in serve(_pushed(root), images)["text"]]
    assert printed[3].startswith("ensemble (pick: no CTC posteriors")
    assert f"cer {character_error_rate(texts, ensemble_read):.4f}" in printed[3]
    assert "BLESSED" in printed[3] and printed[4].startswith("Pushed the ensemble to")
    source = json.loads((_pushed(root) / ENSEMBLE_FILE).read_text())
    assert source["combination"] == PICK


def _pushed(root):
    versions = sorted((root / "serving" / "lines").iterdir())
    return versions[-1]


# --- what cannot be combined ------------------------------------------------------------------


def test_a_path_that_is_not_a_line_model_is_named(members, tmp_path):
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    with pytest.raises(EnsembleError, match=f"{empty} is not a line model"):
        build_ensemble(str(empty), members["ctc_a"], str(tmp_path / "out"))
    with pytest.raises(EnsembleError, match="not_a_model is not a line model"):
        resolve_source(str(empty))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(EnsembleError, match=f"{broken} is not a readable SavedModel"):
        build_ensemble(members["ctc_a"], str(broken), str(tmp_path / "out"))
    other = tmp_path / "other_model"
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x * 2}, input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(module, str(other), signatures={SERVING_SIGNATURE: module.f})
    with pytest.raises(EnsembleError, match=f"{other} is not a line model: it has signatures"):
        build_ensemble(members["ctc_a"], str(other), str(tmp_path / "out"))


def test_members_reading_other_line_sizes_are_refused_naming_both(members, tmp_path):
    with pytest.raises(EnsembleError, match=r"28x84 pixels, .*ctc_wide.* of 28x112"):
        build_ensemble(members["ctc_a"], members["ctc_wide"], str(tmp_path / "out"))


def test_command_line_names_a_missing_examples_dir_or_model(members, tmp_path, capsys):
    from training.run_ensemble import main

    missing = tmp_path / "no_examples"
    assert main([members["ctc_a"], members["ctc_b"], "--examples-dir", str(missing)]) == 2
    assert f"--examples-dir {missing}: no Split-eval" in capsys.readouterr().err
    (tmp_path / "examples" / "Split-eval").mkdir(parents=True)
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    argv = [str(not_a_model), members["ctc_b"], "--examples-dir", str(tmp_path / "examples")]
    assert main([*argv, "--root", str(tmp_path / "root")]) == 2
    assert f"error: {not_a_model} is not a line model" in capsys.readouterr().err


def test_a_combination_can_be_asked_for(members, tmp_path):
    record = build_ensemble(
        members["ctc_a"], members["ctc_b"], str(tmp_path / "pick"), combination=PICK
    )
    assert record["combination"] == PICK and record["reason"] == "asked for"
    with pytest.raises(
        EnsembleError, match=r"cannot average .*ctc_a.* and .*per_position.*: no CTC"
    ):
        build_ensemble(
            members["ctc_a"], members["per_position"], str(tmp_path / "avg"), combination=AVERAGE
        )
    with pytest.raises(EnsembleError, match="combination 'mean'"):
        build_ensemble(members["ctc_a"], members["ctc_b"], str(tmp_path / "x"), combination="mean")
