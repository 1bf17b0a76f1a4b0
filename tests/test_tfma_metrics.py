"""The line metrics inside TFMA, end to end: a tiny SavedModel with a `from_examples` signature,
a TFRecord of line examples, `run_model_analysis` with the Evaluator's metric configs, and the
figures checked, overall and per line length, against `evaluation.text_metrics` on the same text.
"""

from pathlib import Path
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types

from data.features import LABEL_KEY, LENGTH_KEY
from data.vocabulary import LINE_CHARACTERS, PAD_INDEX
from evaluation import text_metrics
from evaluation.tfma_metrics import (
    CER_NAME,
    EXACT_LINE_ACCURACY_NAME,
    WER_NAME,
    CharacterErrorRate,
    ExactLineAccuracy,
    WordErrorRate,
    line_metric_configs,
)

MAX_LENGTH = 8
NOISE_KEY = "noise"
# (text, noise): the model replaces the first `noise` positions, padding included (insertions),
# by the next class. Length 2 gets a CER far above the overall one.
LINES = [
    ("abc", 0),
    ("x y", 1),
    ("hello", 0),
    ("a b c", 2),
    ("Zz 9q", 0),
    ("four two", 3),
    ("longline", 0),
    ("ab", 4),
]
REFERENCES = [text for text, _ in LINES]
CANDIDATE, BASELINE = "candidate", "baseline"


class _LineModel(tf.Module):
    """Reads `label` back as its prediction, corrupted by `noise` unless `perfect`."""

    def __init__(self, perfect: bool):
        super().__init__()
        self._perfect = perfect

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def from_examples(self, serialized):
        features = tf.io.parse_example(
            serialized,
            {
                LABEL_KEY: tf.io.FixedLenFeature([MAX_LENGTH], tf.int64),
                NOISE_KEY: tf.io.FixedLenFeature([1], tf.int64),
            },
        )
        label = features[LABEL_KEY]
        noisy = tf.range(MAX_LENGTH, dtype=tf.int64) < features[NOISE_KEY]
        if not self._perfect:
            label = tf.where(noisy, (label + 1) % PAD_INDEX, label)
        return {"decoded": tf.where(label == PAD_INDEX, tf.constant(-1, tf.int64), label)}


def _int64_feature(values: list) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _serialized_example(text: str, noise: int) -> bytes:
    label = [LINE_CHARACTERS.index(c) for c in text] + [PAD_INDEX] * (MAX_LENGTH - len(text))
    features = {
        LABEL_KEY: _int64_feature(label),
        LENGTH_KEY: _int64_feature([len(text)]),
        NOISE_KEY: _int64_feature([noise]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


class Setup(NamedTuple):
    root: Path
    data_location: str
    models: dict  # model name -> SavedModel path
    hypotheses: list  # the candidate's text for each of LINES, read straight from the SavedModel
    cer: float  # the candidate's overall CER by text_metrics


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    root = tmp_path_factory.mktemp("tfma")
    examples = [_serialized_example(text, noise) for text, noise in LINES]
    data_location = str(root / "lines.tfrecord")
    with tf.io.TFRecordWriter(data_location) as writer:
        for example in examples:
            writer.write(example)
    models = {}
    for name in (CANDIDATE, BASELINE):
        module = _LineModel(perfect=name == BASELINE)
        models[name] = str(root / name)
        tf.saved_model.save(
            module, models[name], signatures={"from_examples": module.from_examples}
        )
    decoded = (
        tf.saved_model.load(models[CANDIDATE])
        .signatures["from_examples"](examples=tf.constant(examples))["decoded"]
        .numpy()
    )
    hypotheses = [text_metrics.labels_to_text(row) for row in decoded]
    cer = text_metrics.character_error_rate(REFERENCES, hypotheses)
    return Setup(root, data_location, models, hypotheses, cer)


def run(setup: Setup, max_cer: float, max_cer_increase: float, output: str) -> str:
    """Evaluates the candidate against the perfect baseline; returns the output path."""
    eval_config = tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                name=name,
                signature_name="from_examples",
                label_key=LABEL_KEY,
                prediction_key="decoded",
                is_baseline=name == BASELINE,
            )
            for name in setup.models
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[LENGTH_KEY])],
        metrics_specs=[tfma.MetricsSpec(metrics=line_metric_configs(max_cer, max_cer_increase))],
    )
    output_path = str(setup.root / output)
    tfma.run_model_analysis(
        eval_shared_model=[
            tfma.default_eval_shared_model(path, model_name=name, eval_config=eval_config)
            for name, path in setup.models.items()
        ],
        eval_config=eval_config,
        data_location=setup.data_location,
        output_path=output_path,
        pipeline_options=beam.options.pipeline_options.PipelineOptions(["--runner=FnApiRunner"]),
    )
    return output_path


@pytest.fixture(scope="module")
def passing_run(setup):
    # The baseline is perfect, so the candidate's CER increase is its CER.
    return run(setup, max_cer=setup.cer + 0.01, max_cer_increase=setup.cer + 0.01, output="passing")


def _figures(eval_result) -> dict:
    """{length or None (overall): {metric name: value}} from an EvalResult."""
    return {
        dict(slice_key).get(LENGTH_KEY): {
            name: value["doubleValue"] for name, value in metrics[""][""].items()
        }
        for slice_key, metrics in eval_result.slicing_metrics
    }


def _expected(references, hypotheses) -> dict:
    return {
        "example_count": len(references),
        CER_NAME: text_metrics.character_error_rate(references, hypotheses),
        WER_NAME: text_metrics.word_error_rate(references, hypotheses),
        EXACT_LINE_ACCURACY_NAME: text_metrics.exact_match_rate(references, hypotheses),
    }


def test_figures_match_text_metrics_overall_and_per_length(setup, passing_run):
    expected = {None: _expected(REFERENCES, setup.hypotheses)}
    for length in {len(text) for text in REFERENCES}:
        pairs = [(r, h) for r, h in zip(REFERENCES, setup.hypotheses) if len(r) == length]
        expected[length] = _expected(*zip(*pairs))
    figures = _figures(tfma.load_eval_result(passing_run, model_name=CANDIDATE))
    assert figures.keys() == expected.keys()
    for length, values in expected.items():
        for name, value in values.items():
            assert figures[length][name] == pytest.approx(value), (length, name)
    assert 0 < expected[None][CER_NAME] < 1 and expected[2][CER_NAME] == 2.0  # not vacuous
    baseline = _figures(tfma.load_eval_result(passing_run, model_name=BASELINE))[None]
    assert (baseline[CER_NAME], baseline[WER_NAME], baseline[EXACT_LINE_ACCURACY_NAME]) == (0, 0, 1)


def test_thresholds_gate_the_overall_slice_only(passing_run):
    # Length 2 has a CER of 2.0, far above max_cer, and still passes: it is reported, not gated.
    assert tfma.load_validation_result(passing_run).validation_ok


def test_cer_above_its_bound_or_its_allowed_increase_fails(setup):
    cer = setup.cer
    output_path = run(setup, max_cer=cer - 0.01, max_cer_increase=cer - 0.01, output="failing")
    validation = tfma.load_validation_result(output_path)
    assert not validation.validation_ok
    (per_slice,) = validation.metric_validations_per_slice
    assert not per_slice.slice_key.single_slice_keys  # the overall slice
    failures = {
        (f.metric_key.name, f.metric_key.is_diff): f.metric_value.double_value.value
        for f in per_slice.failures
    }
    assert failures == {
        (CER_NAME, False): pytest.approx(cer),
        (CER_NAME, True): pytest.approx(cer),
    }


def _combined(metric, *inputs, example_weighted=False) -> float:
    """The metric's combiner over (labels, predictions[, weights]) inputs, each into its own
    accumulator."""
    (computation,) = metric.computations(example_weighted=example_weighted)
    combiner = computation.combiner
    accumulators = [
        combiner.add_input(
            combiner.create_accumulator(),
            metric_types.StandardMetricInputs(
                labels=np.array(labels),
                predictions=np.array(predictions),
                example_weights=np.array(weights[0] if weights else 1.0),
            ),
        )
        for labels, predictions, *weights in inputs
    ]
    (value,) = combiner.extract_output(combiner.merge_accumulators(accumulators)).values()
    return value


@pytest.mark.parametrize(
    "metric, rate",
    [
        (CharacterErrorRate(), text_metrics.character_error_rate),
        (WordErrorRate(), text_metrics.word_error_rate),
        (ExactLineAccuracy(), text_metrics.exact_match_rate),
    ],
)
def test_batched_inputs_and_padding_predictions(metric, rate):
    a, b, space = (LINE_CHARACTERS.index(c) for c in "ab ")
    pad = PAD_INDEX
    lines = [
        ([a, b, pad, pad], [a, a, -1, -1]),  # "ab" / "aa"
        ([a, space, b, pad], [a, space, b, pad]),  # "a b" / "a b", padded with PAD_INDEX
        ([b, pad, pad, pad], [b, a, a, pad]),  # "b" / "baa"
    ]
    one_example, batch = lines[0], tuple(zip(*lines[1:]))  # [4] arrays, then [2, 4] arrays
    assert _combined(metric, one_example, batch) == pytest.approx(
        rate(["ab", "a b", "b"], ["aa", "a b", "baa"])
    )


def test_example_weights():
    a, b = (LINE_CHARACTERS.index(c) for c in "ab")
    line = ([a, b, PAD_INDEX], [a, -1, -1])  # "ab" / "a": one edit in two characters
    perfect = ([b, PAD_INDEX, PAD_INDEX], [b, -1, -1])
    assert _combined(CharacterErrorRate(), line, perfect + (3.0,), example_weighted=True) == 1 / 5
    assert _combined(CharacterErrorRate(), line, perfect + (3.0,)) == 1 / 3
