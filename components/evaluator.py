"""An Evaluator that treats an empty baseline Model artifact as no baseline.

`components.latest_pushed_model` always outputs a Model artifact (a container step cannot output
"nothing" on every orchestrator), empty before the first push. TFX's Evaluator decides whether
there is a baseline by the presence of the input (`has_baseline`), and would fail loading an empty
one; this executor removes the baseline input when it holds no SavedModel, so TFMA rubber-stamps
the first model: change thresholds are skipped, value thresholds still gate it.
"""

import os

import tensorflow as tf
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs
from tfx.utils import path_utils

BASELINE = standard_component_specs.BASELINE_MODEL_KEY


def holds_model(artifact) -> bool:
    """Whether a Model artifact holds a SavedModel where the Evaluator loads it."""
    return tf.io.gfile.exists(
        os.path.join(path_utils.serving_model_path(artifact.uri), "saved_model.pb")
    )


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        baselines = input_dict.get(BASELINE) or []
        if not all(holds_model(artifact) for artifact in baselines):
            input_dict = {key: value for key, value in input_dict.items() if key != BASELINE}
        super().Do(input_dict, output_dict, exec_properties)


class Evaluator(evaluator_component.Evaluator):
    """The standard Evaluator, running the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
