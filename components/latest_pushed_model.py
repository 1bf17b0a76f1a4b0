"""LatestPushedModel: the baseline the Evaluator compares a new model with, found by a plain
container step.

TFX's `Resolver` with `LatestBlessedModelStrategy` compiles to `resolver` executors that only
Vertex AI runs (open-source KFP accepts container and importer executors only). The Pusher only
ever pushes blessed models, so the newest version in the push destination *is* the latest blessed
model: this component copies it into its Model artifact (`Format-Serving/`, where TFMA looks).
With nothing pushed yet the artifact stays empty and `components.evaluator` drops it, so the first
run is gated by the value thresholds alone. The same holds when the newest version reads images of
another shape than the new model (a detector trained at another page size, a line model at another
height or width): TFMA runs both models on the same transformed examples, so such a baseline
cannot be compared; the step records why in SKIPPED_REASON.

Its output depends on the push destination, not on its inputs, so a cached result would be stale:
`seen_version` (the newest version when the pipeline was built, for the local runner) keys the
cache, and compiled specs disable the cache of this step (see kubeflow/spec.py).
"""

import json

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

from common.push_layout import newest_version_dir

PUSHED_VERSION = "pushed_version"  # custom property: the version copied, "" when none
SKIPPED_REASON = "skipped_reason"  # custom property: why the newest version is no baseline


def copy_newest_version(push_destination: str, model_uri: str, input_shape: str = "") -> tuple:
    """Copies the newest version under `push_destination` to the Model artifact at `model_uri`
    when it reads images shaped `input_shape` (JSON list; "" accepts any); returns (its
    directory or "", why it was not copied or "")."""
    from trainer.warm_start import INPUT_SHAPE, stored_info

    newest = newest_version_dir(push_destination)
    tf.io.gfile.makedirs(model_uri)
    if newest is None:
        return "", ""
    recorded = stored_info(newest).get(INPUT_SHAPE)
    if input_shape and recorded is not None and recorded != json.loads(input_shape):
        return "", f"{newest} reads images shaped {recorded}, the new model {input_shape}"
    io_utils.copy_dir(newest, path_utils.serving_model_dir(model_uri))
    return newest, ""


@component
def LatestPushedModel(
    push_destination: Parameter[str],
    seen_version: Parameter[str],
    input_shape: Parameter[str],
    model: OutputArtifact[standard_artifacts.Model],
) -> None:
    """Outputs the newest pushed version as a Model artifact (empty when there is none or when
    it reads images of another shape than `input_shape`)."""
    del seen_version  # only keys the cache
    copied, reason = copy_newest_version(push_destination, model.uri, input_shape)
    model.set_string_custom_property(PUSHED_VERSION, copied)
    model.set_string_custom_property(SKIPPED_REASON, reason)
