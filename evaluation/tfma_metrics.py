"""TFMA metrics over recognized lines, for the line pipeline's Evaluator: "cer", "wer" and
"exact_line_accuracy".

Each compares the `label` (class indices padded with PAD_INDEX) with the model's decoded indices
(padded with -1, or PAD_INDEX), both read as text by `labels_to_text`, and pools the counts that
`evaluation.text_metrics` pools: a figure for the whole eval set or for a slice is exactly that
module's rate over the slice's lines. An EvalConfig names them by class and module:
`tfma.MetricConfig(class_name="CharacterErrorRate", module="evaluation.tfma_metrics")`.
"""

import operator
from collections.abc import Callable, Iterable

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types, metric_util

from evaluation.text_metrics import character_errors, error_rate, labels_to_text, word_errors

CER_NAME = "cer"
WER_NAME = "wer"
EXACT_LINE_ACCURACY_NAME = "exact_line_accuracy"

# (reference text, recognized text) -> (numerator, denominator) of one line's share of a rate.
_LineCounts = Callable[[str, str], tuple]
# Pooled (numerator, denominator) -> the metric value.
_Rate = Callable[[float, float], float]


def _exact_counts(reference: str, hypothesis: str) -> tuple:
    return reference == hypothesis, 1


class _LineCombiner(beam.CombineFn):
    """Sums each line's (numerator, denominator), weighted by its example weight if asked to.

    In TFMA 0.47 the combiner gets one example per call (its UnbatchExtractor runs before the
    metrics), so label and prediction are [length] arrays; a batch ([B, length]) is read row by
    row all the same, so nothing here depends on that.
    """

    def __init__(
        self,
        key: metric_types.MetricKey,
        eval_config: tfma.EvalConfig | None,
        line_counts: _LineCounts,
        rate: _Rate,
    ):
        self._key = key
        self._eval_config = eval_config
        self._line_counts = line_counts
        self._rate = rate

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(2)

    def add_input(
        self, accumulator: np.ndarray, element: metric_types.StandardMetricInputs
    ) -> np.ndarray:
        # flatten=False keeps each line whole (TFMA would otherwise split it into per-class pairs).
        for labels, predictions, weights in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            example_weighted=self._key.example_weighted,
            flatten=False,
            squeeze=False,
        ):
            labels = labels.reshape(-1, labels.shape[-1])
            predictions = predictions.reshape(len(labels), -1)
            weights = np.broadcast_to(weights.reshape(-1), len(labels))
            for label, prediction, weight in zip(labels, predictions, weights):
                counts = self._line_counts(labels_to_text(label), labels_to_text(prediction))
                accumulator += weight * np.asarray(counts, dtype=float)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accumulators), axis=0)

    def extract_output(self, accumulator: np.ndarray) -> dict:
        return {self._key: self._rate(*accumulator)}


def _computations_fn(line_counts: _LineCounts, rate: _Rate) -> Callable:
    def computations(
        name: str,
        eval_config: tfma.EvalConfig | None = None,
        model_name: str = "",
        output_name: str = "",
        example_weighted: bool = False,
    ) -> metric_types.MetricComputations:
        key = metric_types.MetricKey(
            name=name,
            model_name=model_name,
            output_name=output_name,
            example_weighted=example_weighted,
        )
        return [
            metric_types.MetricComputation(
                keys=[key],
                preprocessors=None,
                combiner=_LineCombiner(key, eval_config, line_counts, rate),
            )
        ]

    return computations


class _LineMetric(metric_types.Metric):
    def __init__(self, name: str, line_counts: _LineCounts, rate: _Rate):
        # Only `name` is kept as config, so TFMA can rebuild a subclass from it.
        super().__init__(
            metric_util.merge_per_key_computations(_computations_fn(line_counts, rate)), name=name
        )


class CharacterErrorRate(_LineMetric):
    """Character edits / reference characters, pooled over lines."""

    def __init__(self, name: str = CER_NAME):
        super().__init__(name, character_errors, error_rate)


class WordErrorRate(_LineMetric):
    """Word edits / reference words, pooled over lines; words are runs of non-spaces."""

    def __init__(self, name: str = WER_NAME):
        super().__init__(name, word_errors, error_rate)


class ExactLineAccuracy(_LineMetric):
    """Fraction of lines recognized without a single error."""

    def __init__(self, name: str = EXACT_LINE_ACCURACY_NAME):
        super().__init__(name, _exact_counts, operator.truediv)


def _metric_config(metric: type, **kwargs) -> tfma.MetricConfig:
    return tfma.MetricConfig(class_name=metric.__name__, module=__name__, **kwargs)


def line_metric_configs(max_cer: float, max_cer_increase: float) -> list:
    """Example count, CER, WER and exact-line accuracy. A model is blessed when its overall CER is
    at most `max_cer` and, once a model was blessed before, at most `max_cer_increase` above that
    baseline's; sliced figures are reported, not gated (a plain `threshold` would gate every
    slice)."""
    cer_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(upper_bound={"value": max_cer}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.LOWER_IS_BETTER,
            absolute={"value": max_cer_increase},
        ),
    )
    return [
        tfma.MetricConfig(class_name="ExampleCount"),
        _metric_config(
            CharacterErrorRate,
            per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(
                    slicing_specs=[tfma.SlicingSpec()], threshold=cer_threshold
                )
            ],
        ),
        _metric_config(WordErrorRate),
        _metric_config(ExactLineAccuracy),
    ]
