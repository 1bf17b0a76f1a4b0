"""TFMA metrics over recognized lines, for the line pipeline's Evaluator: "cer", "wer" and
"exact_line_accuracy"; and over the line detector's labelled pixels (below): "pixel_accuracy",
"mean_iou" and "iou_<class>".

Each line metric compares the `label` (class indices padded with PAD_INDEX) with the model's decoded indices
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

from common.pages import PAGE_CLASSES
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


class _SummingCombiner(beam.CombineFn):
    """Sums an array accumulated over the examples of the metric `key`'s model and output."""

    def __init__(self, key: metric_types.MetricKey, eval_config: tfma.EvalConfig | None):
        self._key = key
        self._eval_config = eval_config

    def _labels_predictions_weights(self, element: metric_types.StandardMetricInputs):
        # flatten=False keeps each line or page whole (TFMA would otherwise split it into
        # per-class pairs).
        return metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            example_weighted=self._key.example_weighted,
            flatten=False,
            squeeze=False,
        )

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accumulators), axis=0)


class _LineCombiner(_SummingCombiner):
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
        super().__init__(key, eval_config)
        self._line_counts = line_counts
        self._rate = rate

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(2)

    def add_input(
        self, accumulator: np.ndarray, element: metric_types.StandardMetricInputs
    ) -> np.ndarray:
        for labels, predictions, weights in self._labels_predictions_weights(element):
            labels = labels.reshape(-1, labels.shape[-1])
            predictions = predictions.reshape(len(labels), -1)
            weights = np.broadcast_to(weights.reshape(-1), len(labels))
            for label, prediction, weight in zip(labels, predictions, weights):
                counts = self._line_counts(labels_to_text(label), labels_to_text(prediction))
                accumulator += weight * np.asarray(counts, dtype=float)
        return accumulator

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


# --- pages: per-pixel classes of the line detector ------------------------------------------------

PIXEL_ACCURACY_NAME = "pixel_accuracy"
MEAN_IOU_NAME = "mean_iou"
IOU_PREFIX = "iou_"  # iou_background, iou_odd_line, iou_even_line (common.pages.PAGE_CLASSES)


def pixel_confusion(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """[classes, classes] counts of (true class, predicted class) over every pixel: labels are
    class indices of any shape, predictions the per-pixel class probabilities (last axis)."""
    classes = predictions.shape[-1]
    truth = labels.reshape(-1).astype(np.int64)
    predicted = predictions.reshape(-1, classes).argmax(axis=-1)
    if truth.size != predicted.size:
        raise ValueError(f"{truth.size} labelled pixels but {predicted.size} predicted ones")
    return np.bincount(truth * classes + predicted, minlength=classes * classes).reshape(
        classes, classes
    )


def class_ious(confusion: np.ndarray) -> np.ndarray:
    """Each class's intersection over union, NaN for a class in neither labels nor predictions."""
    intersection = np.diag(confusion).astype(float)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / union


class _PixelCombiner(_SummingCombiner):
    """Sums the pixel confusion matrix over examples (weighted by their example weights if asked
    to), so IoU is pooled over the whole set, not averaged over pages; `outputs` turns the
    pooled matrix into the metric's values by key."""

    def __init__(self, key, eval_config, classes: int, outputs: Callable[[np.ndarray], dict]):
        super().__init__(key, eval_config)
        self._classes = classes
        self._outputs = outputs

    def create_accumulator(self) -> np.ndarray:
        return np.zeros((self._classes, self._classes))

    def add_input(
        self, accumulator: np.ndarray, element: metric_types.StandardMetricInputs
    ) -> np.ndarray:
        for labels, predictions, weights in self._labels_predictions_weights(element):
            accumulator += float(np.mean(weights)) * pixel_confusion(labels, predictions)
        return accumulator

    def extract_output(self, accumulator: np.ndarray) -> dict:
        return self._outputs(accumulator)


class _PixelMetric(metric_types.Metric):
    """A metric of the pooled pixel confusion matrix; `values(name, confusion)` -> {name: value}
    for the metric's own key `name` and any others it reports beside it."""

    def __init__(self, name: str, values: Callable[[str, np.ndarray], dict]):
        def computations(
            name: str,
            eval_config: tfma.EvalConfig | None = None,
            model_name: str = "",
            output_name: str = "",
            example_weighted: bool = False,
        ) -> metric_types.MetricComputations:
            def key(metric_name: str) -> metric_types.MetricKey:
                return metric_types.MetricKey(
                    name=metric_name,
                    model_name=model_name,
                    output_name=output_name,
                    example_weighted=example_weighted,
                )

            def outputs(confusion: np.ndarray) -> dict:
                return {key(n): value for n, value in values(name, confusion).items()}

            classes = len(PAGE_CLASSES)
            keys = list(outputs(np.zeros((classes, classes))))  # the same keys for any matrix
            return [
                metric_types.MetricComputation(
                    keys=keys,
                    preprocessors=None,
                    combiner=_PixelCombiner(key(name), eval_config, classes, outputs),
                )
            ]

        # Only `name` is kept as config, so TFMA can rebuild a subclass from it.
        super().__init__(metric_util.merge_per_key_computations(computations), name=name)


def _accuracy(name: str, confusion: np.ndarray) -> dict:
    return {name: float(np.trace(confusion) / max(confusion.sum(), 1))}


def _ious(name: str, confusion: np.ndarray) -> dict:
    ious = class_ious(confusion)
    present = ious[~np.isnan(ious)]
    return {
        name: float(present.mean()) if present.size else 0.0,
        **{IOU_PREFIX + c: float(iou) for c, iou in zip(PAGE_CLASSES, ious)},
    }


class PixelAccuracy(_PixelMetric):
    """Fraction of pixels whose most probable class is their true class, pooled over pages."""

    def __init__(self, name: str = PIXEL_ACCURACY_NAME):
        super().__init__(name, _accuracy)


class MeanIoU(_PixelMetric):
    """Mean over classes of intersection / union of true and predicted pixels, each pooled over
    all pages (as keras.metrics.MeanIoU; a class absent from both labels and predictions is left
    out of the mean), reported with each class's IoU as `iou_<class>` (NaN for such a class)."""

    def __init__(self, name: str = MEAN_IOU_NAME):
        super().__init__(name, _ious)


def page_metric_configs(min_mean_iou: float, max_mean_iou_drop: float) -> list:
    """Example count, pixel accuracy, mean and per-class IoU. A detector is blessed when its
    overall mean IoU is at least `min_mean_iou` and, once a detector was blessed before, at most
    `max_mean_iou_drop` below that baseline's."""
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_mean_iou}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_mean_iou_drop},
        ),
    )
    return [
        tfma.MetricConfig(class_name="ExampleCount"),
        _metric_config(PixelAccuracy),
        _metric_config(
            MeanIoU,
            per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(
                    slicing_specs=[tfma.SlicingSpec()], threshold=threshold
                )
            ],
        ),
    ]
