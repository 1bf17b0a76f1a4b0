"""The character pipeline's DAG. It only assembles components; the code they run lives in
`transform/`, `trainer/` and `components/`, and runners (`training/`, `kubeflow/`) execute it.
"""

import os
from typing import Optional

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

from components.pusher import Pusher
from components.anomalies_gate import AnomaliesGate
from data.features import CHARACTER_KEY, EVAL_SPLIT, LABEL_KEY, TRAIN_SPLIT
from trainer.export import EXAMPLES_SIGNATURE

PREPROCESSING_FN = "transform.preprocessing.preprocessing_fn"
RUN_FN = "trainer.run.run_fn"
SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "schemas")


def eval_config(min_accuracy: float, max_accuracy_drop: float) -> tfma.EvalConfig:
    """Accuracy overall and per character; blessing needs `min_accuracy` and, once a model was
    blessed before, an accuracy no more than `max_accuracy_drop` below that baseline's."""
    accuracy_threshold = tfma.MetricThreshold(
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
                        # The gate looks at the overall slice; per-character figures are reported.
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=[tfma.SlicingSpec()], threshold=accuracy_threshold
                            )
                        ],
                    ),
                ]
            )
        ],
    )


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    examples_dir: str,
    experiment_json: str,
    schema_file: str = os.path.join(SCHEMA_DIR, "emnist", "schema.pbtxt"),
    serving_model_dir: Optional[str] = None,
    min_accuracy: float = 0.5,
    max_accuracy_drop: float = 0.01,
    metadata_path: Optional[str] = None,
    beam_pipeline_args: Optional[list] = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> AnomaliesGate
    -> Transform -> Trainer -> Evaluator (against the latest blessed model) [-> Pusher, which
    skips a model that is already the newest pushed version].

    `examples_dir` holds `train/` and `eval/` TFRecords of tf.Example. Without
    `serving_model_dir` there is no Pusher: the model is trained and evaluated only.
    """
    example_gen = tfx.components.ImportExampleGen(
        input_base=examples_dir,
        input_config=tfx.proto.Input(
            splits=[
                tfx.proto.Input.Split(name=split, pattern=f"{split}/*")
                for split in (TRAIN_SPLIT, EVAL_SPLIT)
            ]
        ),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
    )
    transform.add_upstream_node(anomalies_gate)
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        custom_config={"experiment": experiment_json},
    )
    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=eval_config(min_accuracy, max_accuracy_drop),
    )
    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        anomalies_gate,
        transform,
        trainer,
        baseline_resolver,
        evaluator,
    ]
    if serving_model_dir:
        components.append(
            Pusher(
                model=trainer.outputs["model"],
                model_blessing=evaluator.outputs["blessing"],
                push_destination=tfx.proto.PushDestination(
                    filesystem=tfx.proto.PushDestination.Filesystem(
                        base_directory=serving_model_dir
                    )
                ),
            )
        )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
            if metadata_path
            else None
        ),
        beam_pipeline_args=beam_pipeline_args or [],
    )
