"""Compiles the pipeline for Kubeflow Pipelines with KubeflowV2DagRunner.

The `.yaml` output is the IR spec that open-source KFP runs (`.json` would be a Vertex AI
PipelineJob). Every component runs in one image that has this project installed (see
kubeflow/Dockerfile), which is why the pipeline names `run_fn` and `preprocessing_fn` by dotted
path instead of shipping a module file, and why schemas are read from their path in the image.
EMNIST line pipelines also read the EMNIST character examples (`--glyph-examples-dir`, the
character pipeline's examples), from which their GlyphBanks step builds the glyph banks.
The compiled spec is then completed for open-source KFP (pipeline root, resource requests, no
cache for the baseline step: kubeflow/spec.py), and every step gets the Beam profile's options.
"""

import argparse
import json
import os

from common.quiet import quiet
from kubeflow.spec import DEFAULT_RESOURCES, RESOURCE_PROFILES, finish
from pipeline.beam_profiles import DEFAULT_PROFILE, PROFILES, beam_args
from trainer.config import ConfigError, ExperimentConfig
from trainer.datasets import DATASETS
from trainer.datasets.base import GLYPH_EXAMPLES, add_threshold_flags, thresholds_given

DEFAULT_IMAGE = "ghcr.io/text-recognizer/pipeline:0.1.0"
IMAGE_SCHEMA_DIR = "/pipeline/schemas"  # where kubeflow/Dockerfile puts schemas/


def compile_pipeline(
    config: ExperimentConfig,
    output_file: str,
    pipeline_root: str,
    examples_dir: str,
    serving_model_dir: str,
    image: str = DEFAULT_IMAGE,
    glyph_examples_dir: str = "",
    beam_profile: str = DEFAULT_PROFILE,
    extra_beam_args: tuple = (),
    resource_profile: str = DEFAULT_RESOURCES,
    baseline: bool = True,
    **thresholds,
) -> str:
    """Writes the pipeline spec to `output_file` and returns its path."""
    import yaml
    from tfx.dsl.io import fileio
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline.pipeline import BASELINE_ID, create_pipeline
    from pipeline.tasks import task_for

    resources = {GLYPH_EXAMPLES: glyph_examples_dir} if glyph_examples_dir else {}
    pipeline = create_pipeline(
        pipeline_name=f"text-recognizer-{DATASETS[config.dataset].model_name}",
        pipeline_root=pipeline_root,
        examples_dir=examples_dir,
        task=task_for(config, resources, IMAGE_SCHEMA_DIR, **thresholds),
        serving_model_dir=serving_model_dir,
        beam_pipeline_args=beam_args(beam_profile, extra_beam_args),
        baseline=baseline,
    )
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        ),
    )
    job = runner.run(pipeline, write_out=False)
    fileio.makedirs(os.path.dirname(os.path.abspath(output_file)))
    finish(job["pipelineSpec"], pipeline_root, resource_profile, uncached=(BASELINE_ID,))
    with fileio.open(output_file, "w") as f:
        if output_file.endswith((".yaml", ".yml")):
            yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
        else:  # a Vertex AI PipelineJob
            json.dump(job, f, sort_keys=True)
    return output_file


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment_config", help="FSDL-style JSON experiment config")
    parser.add_argument("--output", default="pipeline.yaml")
    parser.add_argument("--pipeline-root", required=True, help="e.g. gs://bucket/tfx-root")
    parser.add_argument("--examples-dir", required=True, help="dir with train/ and eval/ TFRecords")
    parser.add_argument("--serving-dir", required=True, help="where Pusher writes <version>/")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument(
        "--glyph-examples-dir",
        default="",
        help="EMNIST lines: EMNIST character examples (train/ and eval/ TFRecords, the character "
        "pipeline's --examples-dir) to build the glyph banks from",
    )
    add_threshold_flags(parser, DATASETS.values())
    parser.add_argument(
        "--beam-profile",
        choices=PROFILES,
        default=DEFAULT_PROFILE,
        help="Beam options of every step (pipeline/beam_profiles.py)",
    )
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        help="a Beam option added to the profile's, e.g. --beam-arg=--job_endpoint=HOST:8099",
    )
    parser.add_argument(
        "--resources",
        choices=RESOURCE_PROFILES,
        default=DEFAULT_RESOURCES,
        help="per-step CPU and memory requests (kubeflow/spec.py)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="no baseline step: gate models on the value thresholds alone",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow, TFX and Beam warnings"
    )
    args = parser.parse_args(argv)
    quiet(args.verbose)
    try:
        config = ExperimentConfig.from_json(args.experiment_config)
        beam_args(args.beam_profile, args.beam_arg)  # BeamProfileError is a ConfigError
    except ConfigError as e:
        parser.error(str(e))
    if GLYPH_EXAMPLES in DATASETS[config.dataset].resources and not args.glyph_examples_dir:
        parser.error(f"{config.dataset} pipelines need --glyph-examples-dir DIR")
    path = compile_pipeline(
        config,
        args.output,
        args.pipeline_root,
        args.examples_dir,
        args.serving_dir,
        args.image,
        args.glyph_examples_dir,
        args.beam_profile,
        tuple(args.beam_arg),
        args.resources,
        not args.no_baseline,
        **thresholds_given(args, DATASETS.values()),
    )
    print(f"Pipeline spec written to {path}")


if __name__ == "__main__":
    main()
