"""The models a local server serves: where their versions are, and one loaded version.

`ModelSource` is one model of the config (base path, version policy, labels), read from TF
Serving's ModelServerConfig by `sources_from_config`; `Servable` is one loaded SavedModel
version, which checks a request's inputs against its SignatureDef as TF Serving does and runs it.
"""

import dataclasses
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.example import example_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_log_pb2

from common.signatures import EXAMPLES_INPUT, SERVING_SIGNATURE
from serving.config_protos import read_model_server_config
from serving.errors import CODE_BY_NUMBER, ServingError, invalid, public_message
from serving.images import header_size

SIGNATURE_DEF_FIELD = "signature_def"
CONTAINER_MODELS_DIR = "/models"  # where docker-compose.yml mounts the push directory
INT64_MAX = 2**63 - 1  # the largest model version TF Serving takes
# TF Serving's SavedModel warm-up file (written by trainer/export.py) and its record limit.
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


def tf_error(error: tf.errors.OpError) -> ServingError:
    """The op's own message (e.g. "Unknown image file format...") without TF's stack preamble,
    node names or paths (`public_message`)."""
    message = public_message(error.message) or type(error).__name__
    return ServingError(CODE_BY_NUMBER.get(error.error_code, grpc.StatusCode.UNKNOWN), message)


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """One model: where its versions are, which to serve, and its version labels."""

    name: str
    base_path: Path
    policy: tuple = ("latest", 1)  # ("latest", n) | ("all",) | ("specific", frozenset)
    labels: tuple = ()  # ((label, version), ...)

    def aspired(self, present: set) -> set:
        """The versions (of those present) that the policy wants loaded."""
        kind = self.policy[0]
        if kind == "all":
            return set(present)
        if kind == "specific":
            return set(present) & set(self.policy[1])
        return set(sorted(present, reverse=True)[: self.policy[1]])


def sources_from_config(path, base_path_root=None) -> list:
    """ModelSources from a TF Serving ModelServerConfig file. Base paths under /models (the
    container's mount point) and relative ones are taken relative to `base_path_root`."""
    config = read_model_server_config(path)
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path}: only model_config_list configs are supported")
    sources, names = [], set()
    for model in config.model_config_list.config:
        if not model.name:
            raise ValueError(f"{path}: a model config has no name")
        if model.name in names:
            raise ValueError(f"{path}: model {model.name!r} is configured twice")
        names.add(model.name)
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f"{path}: model {model.name}: platform {model.model_platform!r} "
                "is not supported (only 'tensorflow')"
            )
        sources.append(
            ModelSource(
                name=model.name,
                base_path=_map_base_path(model.base_path, base_path_root),
                policy=_policy(model.model_version_policy),
                labels=tuple(sorted(model.version_labels.items())),
            )
        )
    return sources


def _map_base_path(base_path: str, root) -> Path:
    if not base_path:
        raise ValueError("a model config has no base_path")
    if root is None:
        return Path(base_path)
    container = CONTAINER_MODELS_DIR
    if base_path == container or base_path.startswith(container + "/"):
        return Path(root) / base_path[len(container) :].lstrip("/")
    path = Path(base_path)
    return path if path.is_absolute() else Path(root) / path


def _policy(policy) -> tuple:
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return ("all",)
    if kind == "specific":
        return ("specific", frozenset(policy.specific.versions))
    if kind == "latest":
        return ("latest", max(1, policy.latest.num_versions))
    return ("latest", 1)  # TF Serving's default


def read_signature_defs(path: Path) -> dict:
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no MetaGraph tagged 'serve'")


class Servable:
    """One loaded version of a model: its signature functions and SignatureDefs."""

    def __init__(self, name: str, version: int, path: Path):
        self.name, self.version, self.path = name, version, path
        self.signature_defs = read_signature_defs(path)
        self._loaded = tf.saved_model.load(str(path))
        self._functions = dict(self._loaded.signatures)

    def warm_up(self) -> int:
        """Replays the version's warm-up requests (TF Serving's PredictionLog records, predict
        logs only), as TF Serving does before it marks a version AVAILABLE, so that the first
        real request does not pay for the first calls' tracing and allocations. Returns how many
        ran; raises ValueError (or ServingError) for a file TF Serving would fail the load for."""
        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)):
            if count == MAX_WARMUP_RECORDS:
                raise ValueError(f"more than {MAX_WARMUP_RECORDS} warm-up records in {WARMUP_FILE}")
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError(
                    f"warm-up record {count}: {log.WhichOneof('log_type')} is not "
                    "served by the local server (only predict_log)"
                )
            request = log.predict_log.request
            inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
            self.run(request.model_spec.signature_name, inputs, tuple(request.output_filter))
            count += 1
        return count

    def signature(self, name: str, grpc_api: bool = False):
        """(signature name, SignatureDef) for a request's signature name ('' is the default)."""
        name = name or SERVING_SIGNATURE
        signature_def = self.signature_defs.get(name)
        if signature_def is None:
            if grpc_api:
                raise ServingError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f'Serving signature key "{name}" not found.',
                )
            raise invalid(f'Serving signature name: "{name}" not found in signature def')
        if not signature_def.inputs or name not in self._functions:
            raise invalid(f"Failed to get input map for signature: {name}")
        return name, signature_def

    def prepare(self, signature_name: str, inputs: dict, output_filter=()) -> tuple:
        """Checks a request's numpy inputs (keyed by input alias) and output filter against the
        signature: (signature name, {alias: array of the input's dtype}, wanted output aliases;
        () for all). Raises ServingError for what TF Serving would refuse."""
        signature_name, signature_def = self.signature(signature_name)
        expected = set(signature_def.inputs)
        if set(inputs) != expected:
            raise invalid(
                f"input size does not match signature: {len(inputs)}!={len(expected)} "
                f"len({{{','.join(sorted(inputs))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(set(inputs) - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - set(inputs)))}}}."
            )
        for alias in output_filter:
            if alias not in signature_def.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs "
                    f"expected to be in the set {{{','.join(sorted(signature_def.outputs))}}}."
                )
        arrays = {
            alias: _checked_array(alias, array, signature_def.inputs[alias])
            for alias, array in inputs.items()
        }
        if EXAMPLES_INPUT in arrays and arrays[EXAMPLES_INPUT].dtype == object:
            _check_examples(signature_name, arrays[EXAMPLES_INPUT])
        return signature_name, arrays, tuple(output_filter)

    def execute(self, signature_name: str, arrays: dict, wanted=()) -> dict:
        """Runs a signature on inputs checked by prepare(); outputs as numpy arrays."""
        signature_def = self.signature_defs[signature_name]
        tensors = {
            alias: tf.constant(array, dtype=tf.dtypes.as_dtype(signature_def.inputs[alias].dtype))
            for alias, array in arrays.items()
        }
        try:
            outputs = self._functions[signature_name](**tensors)
        except tf.errors.OpError as e:
            raise tf_error(e) from None
        except UnicodeDecodeError:  # TF's error message quoted binary input
            raise invalid(
                f"signature {signature_name}: the model could not read its input "
                f"({', '.join(sorted(arrays))})"
            ) from None
        except (TypeError, ValueError) as e:
            raise invalid(public_message(str(e))) from None
        return {alias: outputs[alias].numpy() for alias in (list(wanted) or list(outputs))}

    def run(self, signature_name: str, inputs: dict, output_filter=()) -> dict:
        """Runs a signature on numpy inputs (keyed by input alias); outputs as numpy arrays."""
        return self.execute(*self.prepare(signature_name, inputs, output_filter))


def _checked_array(alias: str, array: np.ndarray, info) -> np.ndarray:
    """The array if it fits the TensorInfo's dtype and shape (numbers converted to its dtype)."""
    dtype = tf.dtypes.as_dtype(info.dtype)
    if dtype == tf.string:
        if array.dtype != object and array.dtype.kind not in "SU":
            raise invalid(f"input {alias}: expects {dtype.name} but {array.dtype} is provided")
    elif array.dtype == object or not np.can_cast(array.dtype, dtype.as_numpy_dtype, "same_kind"):
        raise invalid(f"input {alias}: expects {dtype.name} but {array.dtype} is provided")
    shape = info.tensor_shape
    if not shape.unknown_rank:
        dims = [d.size for d in shape.dim]
        if len(dims) != array.ndim or any(d >= 0 and d != n for d, n in zip(dims, array.shape)):
            wanted = "[" + ",".join("?" if d < 0 else str(d) for d in dims) + "]"
            raise invalid(f"input {alias}: expects shape {wanted} but got {list(array.shape)}")
    if dtype != tf.string:
        array = np.asarray(array, dtype=dtype.as_numpy_dtype)
    return array


def _check_examples(signature_name: str, values: np.ndarray) -> None:
    """INVALID_ARGUMENT naming the first value that is not a serialized tf.Example (typically an
    image sent to the examples signature), before the model fails on it less clearly."""
    for index, value in enumerate(values.flat):
        image = header_size(value)
        if image is None:
            try:
                example_pb2.Example.FromString(value)
                continue
            except DecodeError:
                what = "not a serialized tf.Example"
        else:
            what = f"a {image[0]} image; send images to {SERVING_SIGNATURE}"
        raise invalid(
            f"signature {signature_name} expects serialized tf.Example protos in "
            f"{EXAMPLES_INPUT}, but {EXAMPLES_INPUT}[{index}] is {what}"
        )


def metadata_response(servable: Servable) -> get_model_metadata_pb2.GetModelMetadataResponse:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in servable.signature_defs.items():
        signatures.signature_def[name].CopyFrom(signature_def)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
    return response
