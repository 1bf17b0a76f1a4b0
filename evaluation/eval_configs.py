"""TFMA EvalConfigs of the two dataset types, with their blessing thresholds.

Characters: accuracy overall and per character, gated on a lower bound and on the drop from the
latest blessed model. Lines: CER, WER and exact-line accuracy overall and by line length (and
any extra slicing feature, e.g. the source of real lines), gated on a CER bound and on the
increase over the latest blessed model. Pages (the line detector): pixel accuracy, mean and
per-class IoU, gated on a mean IoU bound and on the drop from the latest blessed detector.
Thresholds apply to the overall slice only.
"""

import tensorflow_model_analysis as tfma

from common.pages import LINE_PROBABILITIES
from common.signatures import EXAMPLES_SIGNATURE
from data.features import CHARACTER_KEY, LABEL_KEY, LENGTH_KEY
from evaluation.tfma_metrics import line_metric_configs, page_metric_configs


def overall_only(threshold: tfma.MetricThreshold) -> list:
    """Thresholds for the overall slice only (a plain `threshold` would gate every slice)."""
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def characters_eval_config(min_accuracy: float, max_accuracy_drop: float) -> tfma.EvalConfig:
    """Blessing needs `min_accuracy` and, once a model was blessed before, an accuracy no more
    than `max_accuracy_drop` below that baseline's."""
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_accuracy_drop},
        ),
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE,
                label_key=LABEL_KEY,
                prediction_key="probabilities",
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[CHARACTER_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        per_slice_thresholds=overall_only(threshold),
                    ),
                ]
            )
        ],
    )


def lines_eval_config(
    max_cer: float, max_cer_increase: float, slice_features: tuple = ()
) -> tfma.EvalConfig:
    """Blessing needs a CER of at most `max_cer` and, once a model was blessed before, at most
    `max_cer_increase` above that baseline's."""
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE, label_key=LABEL_KEY, prediction_key="decoded"
            )
        ],
        slicing_specs=[
            tfma.SlicingSpec(),
            *(tfma.SlicingSpec(feature_keys=[key]) for key in (LENGTH_KEY, *slice_features)),
        ],
        metrics_specs=[tfma.MetricsSpec(metrics=line_metric_configs(max_cer, max_cer_increase))],
    )


def pages_eval_config(min_mean_iou: float, max_mean_iou_drop: float) -> tfma.EvalConfig:
    """Blessing needs a mean IoU (pooled over the eval pages' pixels) of at least `min_mean_iou`
    and, once a detector was blessed before, no more than `max_mean_iou_drop` below that
    baseline's. TFMA reads Transform's output: the normalized page and its class mask (the
    label)."""
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE,
                label_key=LABEL_KEY,
                prediction_key=LINE_PROBABILITIES,
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=page_metric_configs(min_mean_iou, max_mean_iou_drop))
        ],
    )
