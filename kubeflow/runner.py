"""Compiles the character pipeline for Kubeflow Pipelines with KubeflowV2DagRunner.

The `.yaml` output is the IR spec that open-source KFP runs (`.json` would be a Vertex AI
PipelineJob). Every component runs in one image that has this project installed (see
kubeflow/Dockerfile), which is why the pipeline names `run_fn` and `preprocessing_fn` by dotted
path instead of shipping a module file.
"""

import argparse
import os

from tfx import v1 as tfx

from pipeline.pipeline import create_pipeline
from pipeline.tasks import characters_task
from training.config import ConfigError, ExperimentConfig

DEFAULT_IMAGE = "ghcr.io/text-recognizer/pipeline:0.1.0"
# Where kubeflow/Dockerfile puts the curated schemas; the spec must name a path inside the image.
IMAGE_SCHEMA_FILE = "/pipeline/schemas/emnist/schema.pbtxt"
PIPELINE_NAME = "text-recognizer-characters"


def compile_pipeline(
    config: ExperimentConfig,
    output_file: str,
    pipeline_root: str,
    examples_dir: str,
    serving_model_dir: str,
    image: str = DEFAULT_IMAGE,
    schema_file: str = IMAGE_SCHEMA_FILE,
    min_accuracy: float = 0.5,
    max_accuracy_drop: float = 0.01,
) -> str:
    """Writes the pipeline spec to `output_file` and returns its path."""
    pipeline = create_pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=pipeline_root,
        examples_dir=examples_dir,
        experiment_json=config.to_json(),
        task=characters_task(min_accuracy, max_accuracy_drop, schema_file),
        serving_model_dir=serving_model_dir,
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
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
    parser.add_argument("--output", default="character_pipeline.yaml")
    parser.add_argument("--pipeline-root", required=True, help="e.g. gs://bucket/tfx-root")
    parser.add_argument("--examples-dir", required=True, help="dir with train/ and eval/ TFRecords")
    parser.add_argument("--serving-dir", required=True, help="where Pusher writes <version>/")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--schema-file", default=IMAGE_SCHEMA_FILE, help="path inside the image")
    parser.add_argument("--min-accuracy", type=float, default=0.5)
    parser.add_argument("--max-accuracy-drop", type=float, default=0.01)
    args = parser.parse_args(argv)
    try:
        config = ExperimentConfig.from_json(args.experiment_config)
    except ConfigError as e:
        parser.error(str(e))
    path = compile_pipeline(
        config,
        args.output,
        args.pipeline_root,
        args.examples_dir,
        args.serving_dir,
        args.image,
        args.schema_file,
        args.min_accuracy,
        args.max_accuracy_drop,
    )
    print(f"Pipeline spec written to {path}")


if __name__ == "__main__":
    main()
