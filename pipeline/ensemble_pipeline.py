"""The ensemble pipeline's DAG: two line models -> Ensemble -> Evaluator -> Pusher.

The ensemble is evaluated and gated as any line model (the dataset's line EvalConfig, on the
same eval examples as its members, against the latest blessed model), and each member is
evaluated by the same config beside it, so the three figures compare like for like.
"""

import tensorflow as tf
from tfx.dsl.components.common.importer import Importer
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.types import artifact_utils, standard_artifacts

from components.ensemble import Ensemble, LineModelSource, resolve_source
from components.evaluator import Evaluator
from pipeline.pipeline import assemble_pipeline, baseline_step

MEMBERS = ("model_a", "model_b")
EVALUATOR = "Evaluator"  # the ensemble's (gating) Evaluator


def member_evaluator(member: str) -> str:
    """The id of the Evaluator of `member` (one of MEMBERS)."""
    return f"{EVALUATOR}_{member}"


def split_names(examples_dir: str) -> list:
    """The splits of an Examples artifact directory (its `Split-<name>` folders)."""
    prefix = "Split-"
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(examples_dir))
    return sorted(name[len(prefix) :] for name in names if name.startswith(prefix))


def create_ensemble_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    models: tuple,
    examples_dir: str,
    eval_config,
    serving_model_dir: str | None = None,
    metadata_path: str | None = None,
    beam_pipeline_args: list | None = None,
    enable_cache: bool = True,
    combination: str = "auto",
) -> tfx_pipeline.Pipeline:
    """LineModelSource x 2 -> Ensemble -> Evaluator (against the latest blessed model) [->
    Pusher], with an Evaluator per member beside it.

    `models`: the two members' paths (see trainer.ensemble.model_dir). `examples_dir`: an
    Examples artifact (e.g. a line pipeline's Transform `transformed_examples`) with a
    `Split-eval` folder, which every Evaluator reads. `combination`: see
    trainer.ensemble.choose_combination. Without `serving_model_dir` nothing is
    pushed and the ensemble is gated by the value thresholds alone.
    """
    sources = [
        LineModelSource(source=path, seen=resolve_source(path)).with_id(member)
        for member, path in zip(MEMBERS, models)
    ]
    examples = Importer(
        source_uri=examples_dir,
        artifact_type=standard_artifacts.Examples,
        properties={"split_names": artifact_utils.encode_split_names(split_names(examples_dir))},
    ).with_id("eval_examples")
    ensemble = Ensemble(
        model_a=sources[0].outputs["model"],
        model_b=sources[1].outputs["model"],
        combination=combination,
    )
    member_evaluators = [
        Evaluator(
            examples=examples.outputs["result"],
            model=source.outputs["model"],
            eval_config=eval_config,
        ).with_id(member_evaluator(member))
        for member, source in zip(MEMBERS, sources)
    ]
    baseline = baseline_step(serving_model_dir) if serving_model_dir else None
    evaluator = Evaluator(
        examples=examples.outputs["result"],
        model=ensemble.outputs["model"],
        baseline_model=baseline.outputs["model"] if baseline else None,
        eval_config=eval_config,
    ).with_id(EVALUATOR)
    components = [*sources, examples, ensemble, *member_evaluators]
    components += [baseline, evaluator] if baseline else [evaluator]
    return assemble_pipeline(
        pipeline_name,
        pipeline_root,
        components,
        pushed=(ensemble.outputs["model"], evaluator),
        serving_model_dir=serving_model_dir,
        metadata_path=metadata_path,
        beam_pipeline_args=beam_pipeline_args,
        enable_cache=enable_cache,
    )
