"""A Pusher executor that does not push the same model twice in a row.

A rerun of the pipeline re-evaluates the unchanged model against the newest baseline (itself),
blesses it again, and the standard Pusher would then copy it to a new version directory: the
same model served under two versions. This executor compares SavedModel fingerprints with the
newest pushed version and, when they match, records that version as the push instead.
"""

import os

import tensorflow as tf
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from common.push_layout import newest_version_dir

FINGERPRINT_FILE = "fingerprint.pb"


def same_saved_model(model_dir: str, other_dir: str) -> bool:
    """Whether two directories hold the same SavedModel, by their fingerprints."""
    paths = [os.path.join(d, FINGERPRINT_FILE) for d in (model_dir, other_dir)]
    if not all(tf.io.gfile.exists(p) for p in paths):
        return False
    first, second = (tf.io.gfile.GFile(p, "rb").read() for p in paths)
    return first == second


class Executor(pusher_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        base = destination.filesystem.base_directory
        newest = newest_version_dir(base)
        if (
            newest
            and self.CheckBlessing(input_dict)
            and same_saved_model(self.GetModelPath(input_dict), newest)
        ):
            model_push = artifact_utils.get_single_instance(
                output_dict[standard_component_specs.PUSHED_MODEL_KEY]
            )
            self._MarkPushed(model_push, newest, os.path.basename(newest))
            return
        super().Do(input_dict, output_dict, exec_properties)


class Pusher(pusher_component.Pusher):
    """The standard Pusher, running the executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
