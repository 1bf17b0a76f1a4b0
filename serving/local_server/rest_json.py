"""TF Serving's REST JSON encoding: request JSON to numpy inputs, outputs back to JSON.

Row format (`{"instances": [...]}`, answered with `{"predictions": ...}`) and columnar format
(`{"inputs": ...}`, answered with `{"outputs": ...}`), binary values as `{"b64": "..."}`, with
TF Serving's error messages for what it refuses.
"""

import base64
import binascii
import json

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.errors import ServingError, invalid, too_large
from serving.local_server.models import SIGNATURE_DEF_FIELD


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, dict):
        return "Object"
    return "Null" if value is None else "Array"


class JsonDecoder:
    def __init__(self, max_image_bytes: int):
        self.max_image_bytes = max_image_bytes

    def array(self, value, info) -> np.ndarray:
        """A JSON value (list nesting = dimensions) as an array of the TensorInfo's dtype."""
        dtype = tf.dtypes.as_dtype(info.dtype)
        shape = []
        probe = value
        while isinstance(probe, list):
            shape.append(len(probe))
            if not probe:
                break
            probe = probe[0]
        flat: list = []
        self._fill(value, 0, shape, dtype, flat)
        if dtype == tf.string:
            array: np.ndarray = np.empty(len(flat), dtype=np.object_)
            array[:] = flat
            return array.reshape(shape)
        try:
            return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(shape)
        except (OverflowError, ValueError) as e:
            raise invalid(f"JSON Value does not fit {dtype.name}: {e}") from None

    def _fill(self, value, level: int, shape: list, dtype, flat: list) -> None:
        if isinstance(value, list):
            if level >= len(shape):
                raise invalid(
                    f"Encountered list at unexpected level: {level} expected < {len(shape)}"
                )
            if len(value) != shape[level]:
                raise invalid(
                    f"Encountered list at unexpected size: {len(value)} at level: "
                    f"{level} expected size: {shape[level]}"
                )
            for item in value:
                self._fill(item, level + 1, shape, dtype, flat)
            return
        if level != len(shape):
            raise invalid(
                f"JSON Value: {short(value)} found at incorrect level: {level + 1} in "
                f"the JSON DOM. Expected at level: {len(shape)}"
            )
        flat.append(self._scalar(value, dtype))

    def _scalar(self, value, dtype):
        if dtype == tf.string:
            if isinstance(value, str):
                try:
                    data = value.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
                    raise invalid(
                        f"JSON Value: {short(value)} is not valid Unicode text (lone "
                        'surrogate); send binary data as {"b64": ...}'
                    ) from None
            elif isinstance(value, dict):
                if not _is_b64(value):
                    raise invalid(
                        f"JSON Value: {short(value)} expecting to be a base64 encoded "
                        "string, as an object with a single key 'b64'"
                    )
                try:
                    data = base64.b64decode(value["b64"], validate=True)
                except (binascii.Error, ValueError):
                    raise invalid("Unable to base64 decode") from None
            else:
                raise self._type_error(value, dtype)
            if len(data) > self.max_image_bytes:
                raise too_large(
                    f"a binary value of {len(data)} bytes exceeds the limit of "
                    f"{self.max_image_bytes} bytes (--max_image_bytes)"
                )
            return data
        if dtype == tf.bool:
            if not isinstance(value, bool):
                raise self._type_error(value, dtype)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._type_error(value, dtype)
        if dtype.is_integer and not (isinstance(value, int) or float(value).is_integer()):
            raise self._type_error(value, dtype)
        return value

    @staticmethod
    def _type_error(value, dtype) -> ServingError:
        return invalid(
            f"JSON Value: {short(value)} Type: {_json_type(value)} is not of "
            f"expected type: {dtype.name}"
        )


def short(value, limit: int = 100) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def request_inputs(doc: dict, inputs_info, decoder: JsonDecoder) -> tuple:
    """({alias: array}, row_format) from a predict request's "instances" or "inputs"."""
    if "instances" in doc and "inputs" in doc:
        raise invalid(
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"
        )
    names = sorted(inputs_info)
    if "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid("Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid("No values in 'instances' array")
        as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
        if not as_objects and len(names) > 1:
            raise invalid(
                "instances is a plain list, but expecting list of objects as multiple "
                "input tensors required as per tensorinfo_map"
            )
        columns: dict[str, list] = {name: [] for name in names}
        for index, item in enumerate(instances):
            item_is_object = isinstance(item, dict) and not _is_b64(item)
            if as_objects != item_is_object:
                raise invalid(
                    f"Expecting {'object' if as_objects else 'value/list'} but got "
                    f"{'object' if item_is_object else 'value/list'} at item {index} "
                    "of input list"
                )
            values = item if as_objects else {names[0]: item}
            for name, value in values.items():
                try:
                    if name not in inputs_info:
                        raise invalid(f"JSON object: does not have named input: {name}")
                    array = decoder.array(value, inputs_info[name])
                except ServingError as e:
                    raise ServingError(
                        e.code,
                        f"Failed to process element: {index} key: {name} "
                        f"of 'instances' list. Error: {e.message}",
                        e.http_status,
                    ) from None
                if columns[name] and columns[name][0].shape != array.shape:
                    raise invalid(
                        f"Failed to process element: {index} key: {name} of "
                        f"'instances' list. Error: Expecting shape "
                        f"{list(columns[name][0].shape)} but got: {list(array.shape)}"
                    )
                columns[name].append(array)
            if set(values) != set(names):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON "
                    f"object: {short(item)} keys must be equal to: {','.join(names)}"
                )
        return {name: np.stack(arrays) for name, arrays in columns.items()}, True
    if "inputs" in doc:
        value = doc["inputs"]
        if not isinstance(value, dict) or _is_b64(value):
            if len(names) > 1:
                raise invalid(
                    "inputs is a plain value/list, but expecting an object as multiple "
                    "input tensors required as per tensorinfo_map"
                )
            return {names[0]: decoder.array(value, inputs_info[names[0]])}, False
        arrays = {}
        for name in names:
            if name not in value:
                raise invalid(f"Missing named input: {name} in 'inputs' object.")
            arrays[name] = decoder.array(value[name], inputs_info[name])
        return arrays, False
    raise invalid("Missing 'inputs' or 'instances' key")


def _json_values(array: np.ndarray, name: str):
    """An output array as JSON values; strings as text, or {"b64": ...} for names ending in
    "_bytes" (TF Serving's rule)."""
    if array.dtype == object or array.dtype.kind == "S":
        as_b64 = name.endswith("_bytes")

        def convert(value):
            if isinstance(value, list):
                return [convert(v) for v in value]
            if as_b64:
                return {"b64": base64.b64encode(value).decode("ascii")}
            return value.decode("utf-8", errors="replace")

        return convert(array.tolist())
    return array.tolist()


def response_json(outputs: dict, row_format: bool) -> dict:
    if not row_format:
        if len(outputs) == 1:
            ((name, array),) = outputs.items()
            return {"outputs": _json_values(array, name)}
        return {"outputs": {name: _json_values(array, name) for name, array in outputs.items()}}
    batch: int | None = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    columns = {name: _json_values(array, name) for name, array in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {
        "predictions": [
            {name: values[i] for name, values in columns.items()} for i in range(batch or 0)
        ]
    }


def metadata_json(response) -> dict:
    """TF Serving's REST metadata JSON: model_spec and metadata.signature_def (a SignatureDefMap)."""
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
    options = {"including_default_value_fields": True, "preserving_proto_field_name": True}
    return {
        "model_spec": json_format.MessageToDict(response.model_spec, **options),
        "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(signatures, **options)},
    }
