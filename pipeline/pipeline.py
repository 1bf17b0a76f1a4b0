"""The pipeline's DAG. It only assembles components; the code they run lives in
`transform/`, `trainer/` and `components/`, and runners (`training/`, `kubeflow/`) execute it.
"""

import json

# The components' own modules, not `tfx.v1`, whose import also loads the Vertex AI, BigQuery and
# Pub/Sub clients (about 60 s of CPU before anything runs).
from tfx.components.example_gen.import_example_gen.component import ImportExampleGen
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.dsl.components.base.base_component import BaseComponent
from tfx.dsl.components.common.importer import Importer
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, range_config_pb2

from common.push_layout import newest_version
from components import glyph_banks
from components.anomalies_gate import AnomaliesGate
from components.evaluator import Evaluator
from components.latest_pushed_model import LatestPushedModel
from components.pusher import Pusher
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.versions import example_input
from pipeline.tasks import Task

RUN_FN = "trainer.run.run_fn"
BASELINE_ID = "latest_pushed_model"
GLYPH_EXAMPLES_ID = "GlyphExampleGen"


def baseline_step(serving_model_dir: str, input_shape: str = "") -> BaseComponent:
    """The step that outputs the newest pushed (so latest blessed) model, if it reads images
    shaped `input_shape` (JSON; "" for any). A local push destination is looked at now, keying
    the step's cache by its newest version; a remote one is not (compiling needs no
    credentials), and compiled specs disable this step's cache."""
    local = "://" not in serving_model_dir
    seen = str(newest_version(serving_model_dir)) if local else "remote"
    return LatestPushedModel(
        push_destination=serving_model_dir, seen_version=seen, input_shape=input_shape
    ).with_id(BASELINE_ID)


def _tuning(task: Task, transform, schema_gen, hyperparameters, banks: dict) -> tuple:
    """(step, output key) giving the Trainer its hyperparameters, or (): with `hyperparameters`
    (a best_hyperparameters artifact of an earlier run) an Importer of it, else the Tuner when
    the config has a "tune" space (trainer/tuner.py), given the glyph `banks` if any (its trials
    redraw lines as the Trainer does)."""
    if hyperparameters is not None:
        from tfx.types.standard_artifacts import HyperParameters

        return Importer(source_uri=hyperparameters.uri, artifact_type=HyperParameters).with_id(
            "hyperparameters_importer"
        ), "result"
    if not json.loads(task.trainer_config["experiment"]).get("tune"):
        return ()
    from trainer.tuner import TUNER_FN, TUNER_ID, tuner_component

    inputs = {
        "examples": transform.outputs["transformed_examples"],
        "transform_graph": transform.outputs["transform_graph"],
        "schema": schema_gen.outputs["schema"],
        "custom_config": task.trainer_config,
    }
    tuner = (
        glyph_banks.Tuner(**banks, tuner_fn=TUNER_FN, **inputs).with_id(TUNER_ID)
        if banks
        else tuner_component(**inputs)
    )
    return tuner, "best_hyperparameters"


def import_example_gen(examples_dir: str) -> ImportExampleGen:
    """Reads `examples_dir`'s train/ and eval/ TFRecords; a prepared dataset version
    (`<series>/span-<N>`, data.versions) as span N of its series, so the examples artifact
    carries the span and the same span's files hit the cache."""
    input_base, prefix, span = example_input(examples_dir)
    return ImportExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=split, pattern=f"{prefix}{split}/*")
                for split in (TRAIN_SPLIT, EVAL_SPLIT)
            ]
        ),
        range_config=None
        if span is None
        else range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)
        ),
    )


def _glyph_banks(task: Task) -> tuple:
    """(ImportExampleGen of the EMNIST character examples, GlyphBanks step) for a task that draws
    its lines with glyph banks, else ()."""
    if not task.glyph_examples:
        return ()
    examples = import_example_gen(task.glyph_examples).with_id(GLYPH_EXAMPLES_ID)
    return examples, glyph_banks.GlyphBanksComponent(examples=examples.outputs["examples"])


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    examples_dir: str,
    task: Task,
    serving_model_dir: str | None = None,
    metadata_path: str | None = None,
    beam_pipeline_args: list | None = None,
    enable_cache: bool = True,
    baseline: bool = True,
    hyperparameters=None,
) -> tfx_pipeline.Pipeline:
    """ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> AnomaliesGate
    -> Transform [-> Tuner, or an Importer of `hyperparameters`] -> Trainer -> Evaluator
    (against the latest blessed model) [-> Pusher, which skips a model that is already the
    newest pushed version]. A task with `glyph_examples` adds an ImportExampleGen of those EMNIST
    characters -> GlyphBanks, whose banks Transform and the Trainer draw lines with.

    `examples_dir` holds `train/` and `eval/` TFRecords of tf.Example (import_example_gen). Without
    `serving_model_dir` there is no Pusher: the model is trained and evaluated only. The baseline
    is the newest model in `serving_model_dir` (LatestPushedModel); without one, or with
    `baseline=False`, models are gated by the value thresholds alone.
    """
    example_gen = import_example_gen(examples_dir)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = ImportSchemaGen(schema_file=task.schema_file)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
    glyph_steps = _glyph_banks(task)
    banks = (
        {glyph_banks.BANKS_KEY: glyph_steps[1].outputs[glyph_banks.BANKS_KEY]}
        if glyph_steps
        else {}
    )
    transform = (glyph_banks.Transform if banks else Transform)(
        **banks,
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=task.preprocessing_fn,
        custom_config=task.transform_config,
    )
    transform.add_upstream_node(anomalies_gate)
    tuning = _tuning(task, transform, schema_gen, hyperparameters, banks)
    trainer = (glyph_banks.Trainer if banks else Trainer)(
        **banks,
        run_fn=RUN_FN,
        hyperparameters=tuning[0].outputs[tuning[1]] if tuning else None,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        custom_config=task.trainer_config,
    )
    baseline_node = (
        baseline_step(serving_model_dir, task.input_shape)
        if baseline and serving_model_dir
        else None
    )
    evaluator = Evaluator(
        examples=(
            transform.outputs["transformed_examples"]
            if task.evaluate_transformed
            else example_gen.outputs["examples"]
        ),
        model=trainer.outputs["model"],
        baseline_model=baseline_node.outputs["model"] if baseline_node else None,
        eval_config=task.eval_config,
    )
    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        anomalies_gate,
        *glyph_steps,
        transform,
        *tuning[:1],
        trainer,
        *([baseline_node] if baseline_node else []),
        evaluator,
    ]
    return assemble_pipeline(
        pipeline_name,
        pipeline_root,
        components,
        pushed=(trainer.outputs["model"], evaluator),
        serving_model_dir=serving_model_dir,
        metadata_path=metadata_path,
        beam_pipeline_args=beam_pipeline_args,
        enable_cache=enable_cache,
    )


def assemble_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    components: list,
    pushed: tuple,
    serving_model_dir: str | None,
    metadata_path: str | None,
    beam_pipeline_args: list | None,
    enable_cache: bool,
) -> tfx_pipeline.Pipeline:
    """`components`, plus with `serving_model_dir` a Pusher of `pushed` (a model channel, the
    Evaluator that blesses it), as a pipeline on the `metadata_path` SQLite store (None: the
    runner's own)."""
    model, evaluator = pushed
    if serving_model_dir:
        components = components + [
            Pusher(
                model=model,
                model_blessing=evaluator.outputs["blessing"],
                push_destination=pusher_pb2.PushDestination(
                    filesystem=pusher_pb2.PushDestination.Filesystem(
                        base_directory=serving_model_dir
                    )
                ),
            )
        ]
    return tfx_pipeline.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=(
            metadata.sqlite_metadata_connection_config(metadata_path) if metadata_path else None
        ),
        beam_pipeline_args=beam_pipeline_args or [],
    )
