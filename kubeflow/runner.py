"""Compiles the pipeline for Kubeflow Pipelines with KubeflowV2DagRunner.

The `.yaml` output is the IR spec that open-source KFP runs (`.json` would be a Vertex AI
PipelineJob). Every component runs in one image that has this project installed (see
kubeflow/Dockerfile), which is why the pipeline names `run_fn` and `preprocessing_fn` by dotted
path instead of shipping a module file, and why schemas are read from their path in the image.
Line pipelines also need their two glyph banks (train, test) where the cluster can read them.
"""

import argparse
import os

from common.quiet import quiet
from trainer.config import ConfigError, ExperimentConfig
from trainer.datasets import DATASETS
from trainer.datasets.base import add_threshold_flags, thresholds_given
from trainer.datasets.emnist_lines import GLYPH_BANKS

DEFAULT_IMAGE = "ghcr.io/text-recognizer/pipeline:0.1.0"
IMAGE_SCHEMA_DIR = "/pipeline/schemas"  # where kubeflow/Dockerfile puts schemas/


def compile_pipeline(
    config: ExperimentConfig,
    output_file: str,
    pipeline_root: str,
    examples_dir: str,
    serving_model_dir: str,
    image: str = DEFAULT_IMAGE,
    glyph_banks: tuple = (),
    **thresholds,
) -> str:
    """Writes the pipeline spec to `output_file` and returns its path."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline.pipeline import create_pipeline
    from pipeline.tasks import task_for

    resources = {GLYPH_BANKS: list(glyph_banks)} if glyph_banks else {}
    pipeline = create_pipeline(
        pipeline_name=f"text-recognizer-{DATASETS[config.dataset].model_name}",
        pipeline_root=pipeline_root,
        examples_dir=examples_dir,
        task=task_for(config, resources, IMAGE_SCHEMA_DIR, **thresholds),
        serving_model_dir=serving_model_dir,
    )
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(pipeline, write_out=True)
    return output_file


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment_config", help="FSDL-style JSON experiment config")
    parser.add_argument("--output", default="pipeline.yaml")
    parser.add_argument("--pipeline-root", required=True, help="e.g. gs://bucket/tfx-root")
    parser.add_argument("--examples-dir", required=True, help="dir with train/ and eval/ TFRecords")
    parser.add_argument("--serving-dir", required=True, help="where Pusher writes <version>/")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--glyph-banks", nargs=2, default=(), metavar=("TRAIN", "TEST"),
                        help="lines: the train and test glyph banks (.npz)")
    add_threshold_flags(parser, DATASETS.values())
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow, TFX and Beam warnings")
    args = parser.parse_args(argv)
    quiet(args.verbose)
    try:
        config = ExperimentConfig.from_json(args.experiment_config)
    except ConfigError as e:
        parser.error(str(e))
    if GLYPH_BANKS in DATASETS[config.dataset].resources and not args.glyph_banks:
        parser.error(f"{config.dataset} pipelines need --glyph-banks TRAIN TEST")
    path = compile_pipeline(
        config,
        args.output,
        args.pipeline_root,
        args.examples_dir,
        args.serving_dir,
        args.image,
        tuple(args.glyph_banks),
        **thresholds_given(args, DATASETS.values()),
    )
    print(f"Pipeline spec written to {path}")


if __name__ == "__main__":
    main()
