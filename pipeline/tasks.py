"""What differs between the pipelines built from `pipeline.create_pipeline`, derived from the
experiment config's dataset (see trainer.datasets): the curated schema, the preprocessing
function, how models are evaluated and gated and on which examples, what Transform and the
Trainer are given, and the EMNIST character examples their glyph banks are built from, if any.
"""

import dataclasses
import json
import os

from trainer.datasets import DATASETS
from trainer.datasets.base import GLYPH_EXAMPLES

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")


@dataclasses.dataclass(frozen=True)
class Task:
    schema_file: str
    preprocessing_fn: str  # dotted path, imported by the Transform executor
    eval_config: object  # tfma.EvalConfig
    evaluate_transformed: bool = False
    transform_config: dict = dataclasses.field(default_factory=dict)
    trainer_config: dict = dataclasses.field(default_factory=dict)
    glyph_examples: str = ""  # EMNIST character examples to build glyph banks from ("": none)
    input_shape: str = ""  # JSON shape of a transformed image: a baseline must read the same


def task_for(config, resources: dict, schema_dir: str = SCHEMA_DIR, **thresholds) -> Task:
    """The task an experiment config runs. `resources`: the dataset's side inputs (e.g.
    {"glyph_examples": a folder of EMNIST character TFRecords}); `thresholds`: blessing
    thresholds overriding the dataset's defaults (min_accuracy/max_accuracy_drop for characters,
    max_cer/max_cer_increase for lines; ones the dataset does not use are ignored)."""
    dataset = DATASETS[config.dataset]
    return Task(
        schema_file=os.path.join(schema_dir, dataset.schema, "schema.pbtxt"),
        preprocessing_fn=dataset.preprocessing_fn,
        eval_config=dataset.eval_config(dataset.blessing_thresholds(thresholds)),
        evaluate_transformed=dataset.evaluate_transformed,
        glyph_examples=str(resources.get(GLYPH_EXAMPLES, "")),
        input_shape=json.dumps(list(dataset.image_shape(config.dataset_args))),
        transform_config=dataset.transform_config(config, resources),
        trainer_config={
            "experiment": config.to_json(),
            **dataset.trainer_config(config, resources),
        },
    )
