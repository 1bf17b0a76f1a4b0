"""The pipeline's DAG. It only assembles components; the code they run lives in
`transform/`, `trainer/` and `components/`, and runners (`training/`, `kubeflow/`) execute it.
"""

from typing import Optional

from tfx import v1 as tfx

from components.pusher import Pusher
from components.anomalies_gate import AnomaliesGate
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from pipeline.tasks import Task

RUN_FN = "trainer.run.run_fn"


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    examples_dir: str,
    experiment_json: str,
    task: Task,
    serving_model_dir: Optional[str] = None,
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
    schema_gen = tfx.components.ImportSchemaGen(schema_file=task.schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=task.preprocessing_fn,
        custom_config=task.transform_config,
    )
    transform.add_upstream_node(anomalies_gate)
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        # The Trainer can draw lines too (fresh ones every epoch), with Transform's settings.
        custom_config={"experiment": experiment_json, **task.transform_config},
    )
    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=(
            transform.outputs["transformed_examples"]
            if task.evaluate_transformed
            else example_gen.outputs["examples"]
        ),
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=task.eval_config,
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
