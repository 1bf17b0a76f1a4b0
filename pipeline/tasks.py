"""What differs between the pipelines built from `pipeline.create_pipeline`: the curated schema,
the preprocessing function, how models are evaluated and gated, and on which examples.

Characters are evaluated on the raw examples, through the model's `from_examples` signature.
Line images only exist after Transform draws them, so line models are evaluated on Transform's
output.
"""

import dataclasses
import os

import tensorflow_model_analysis as tfma

from data.features import CHARACTER_KEY, LABEL_KEY, LENGTH_KEY
from evaluation.tfma_metrics import line_metric_configs
from common.signatures import EXAMPLES_SIGNATURE
from transform.line_preprocessing import synthesis_args

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")


@dataclasses.dataclass(frozen=True)
class Task:
    schema_file: str
    preprocessing_fn: str  # dotted path, imported by the Transform executor
    eval_config: tfma.EvalConfig
    evaluate_transformed: bool = False
    transform_config: dict = dataclasses.field(default_factory=dict)


def _overall_only(threshold: tfma.MetricThreshold) -> list:
    """Thresholds for the overall slice only (a plain `threshold` would gate every slice)."""
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def task_for(config, glyph_banks=(), schema_dir: str = SCHEMA_DIR, **thresholds) -> Task:
    """The task an experiment config runs. `thresholds`: min_accuracy and max_accuracy_drop for
    characters, max_cer and max_cer_increase for lines (defaults as in the CLI)."""
    if config.dataset == "EmnistLinesDataset":
        return lines_task(
            glyph_banks,
            config.dataset_args,
            thresholds.get("max_cer", 0.5),
            thresholds.get("max_cer_increase", 0.01),
            schema_dir,
        )
    return characters_task(
        thresholds.get("min_accuracy", 0.5), thresholds.get("max_accuracy_drop", 0.01), schema_dir
    )


def characters_task(
    min_accuracy: float, max_accuracy_drop: float, schema_dir: str = SCHEMA_DIR
) -> Task:
    """Accuracy overall and per character; blessing needs `min_accuracy` and, once a model was
    blessed before, an accuracy no more than `max_accuracy_drop` below that baseline's."""
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_accuracy_drop},
        ),
    )
    eval_config = tfma.EvalConfig(
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
                        per_slice_thresholds=_overall_only(threshold),
                    ),
                ]
            )
        ],
    )
    return Task(
        schema_file=os.path.join(schema_dir, "emnist", "schema.pbtxt"),
        preprocessing_fn="transform.preprocessing.preprocessing_fn",
        eval_config=eval_config,
    )


def lines_task(
    glyph_banks: list,
    dataset_args: dict,
    max_cer: float,
    max_cer_increase: float,
    schema_dir: str = SCHEMA_DIR,
) -> Task:
    """Lines drawn by Transform from `glyph_banks` ([train bank, test bank] paths); CER, WER and
    exact-line accuracy overall and by line length; blessing needs a CER of at most `max_cer`
    and, once a model was blessed before, at most `max_cer_increase` above that baseline's."""
    eval_config = tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE, label_key=LABEL_KEY, prediction_key="decoded"
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[LENGTH_KEY])],
        metrics_specs=[tfma.MetricsSpec(metrics=line_metric_configs(max_cer, max_cer_increase))],
    )
    synthesis = synthesis_args(dataset_args)
    return Task(
        schema_file=os.path.join(schema_dir, "emnist_lines", "schema.pbtxt"),
        preprocessing_fn="transform.line_preprocessing.preprocessing_fn",
        eval_config=eval_config,
        evaluate_transformed=True,
        transform_config={"glyph_banks": list(glyph_banks), **synthesis},
    )
