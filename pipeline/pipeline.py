"""The pipeline's DAG. It only assembles components; the code they run lives in
`transform/`, `trainer/` and `components/`, and runners (`training/`, `kubeflow/`) execute it.
"""

from typing import Optional

# The components' own modules, not `tfx.v1`, whose import also loads the Vertex AI, BigQuery and
# Pub/Sub clients (about 60 s of CPU before anything runs).
from tfx.components.evaluator.component import Evaluator
from tfx.components.example_gen.import_example_gen.component import ImportExampleGen
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

from components.anomalies_gate import AnomaliesGate
from components.pusher import Pusher
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from pipeline.tasks import Task

RUN_FN = "trainer.run.run_fn"


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    examples_dir: str,
    task: Task,
    serving_model_dir: Optional[str] = None,
    metadata_path: Optional[str] = None,
    beam_pipeline_args: Optional[list] = None,
    enable_cache: bool = True,
) -> tfx_pipeline.Pipeline:
    """ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> AnomaliesGate
    -> Transform -> Trainer -> Evaluator (against the latest blessed model) [-> Pusher, which
    skips a model that is already the newest pushed version].

    `examples_dir` holds `train/` and `eval/` TFRecords of tf.Example. Without
    `serving_model_dir` there is no Pusher: the model is trained and evaluated only.
    """
    example_gen = ImportExampleGen(
        input_base=examples_dir,
        input_config=example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=split, pattern=f"{split}/*")
                for split in (TRAIN_SPLIT, EVAL_SPLIT)
            ]
        ),
    )
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = ImportSchemaGen(schema_file=task.schema_file)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=task.preprocessing_fn,
        custom_config=task.transform_config,
    )
    transform.add_upstream_node(anomalies_gate)
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        custom_config=task.trainer_config,
    )
    baseline_resolver = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = Evaluator(
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
                push_destination=pusher_pb2.PushDestination(
                    filesystem=pusher_pb2.PushDestination.Filesystem(
                        base_directory=serving_model_dir
                    )
                ),
            )
        )
    return tfx_pipeline.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=(
            metadata.sqlite_metadata_connection_config(metadata_path)
            if metadata_path
            else None
        ),
        beam_pipeline_args=beam_pipeline_args or [],
    )
