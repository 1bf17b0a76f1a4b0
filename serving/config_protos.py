"""TF Serving's text-proto config files, read with TF Serving's own message definitions.

`ModelServerConfig` comes from `tensorflow_serving.config.model_server_config_pb2` (shipped in
`tensorflow-serving-api`). `MonitoringConfig` and `BatchingParameters` are not shipped in that
package (its 2.16.1 wheel has no `monitoring_config_pb2` or `session_bundle_config_pb2`), so
when they cannot be imported they are built here from the TF Serving 2.16.1 definitions
(`tensorflow_serving/config/monitoring_config.proto`,
`tensorflow_serving/servables/tensorflow/session_bundle_config.proto`: same package, message
names, field names and numbers), in a private descriptor pool.
"""

import functools
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

_FIELD = descriptor_pb2.FieldDescriptorProto
_WRAPPERS = {
    "int64": ".google.protobuf.Int64Value",
    "string": ".google.protobuf.StringValue",
    "bool": ".google.protobuf.BoolValue",
}

# (name, number, type): TF Serving 2.16.1's fields of each message.
_BATCHING_FIELDS = [
    ("max_batch_size", 1, "int64"),
    ("batch_timeout_micros", 2, "int64"),
    ("max_enqueued_batches", 3, "int64"),
    ("num_batch_threads", 4, "int64"),
    ("thread_pool_name", 5, "string"),
    ("allowed_batch_sizes", 6, "repeated int64"),
    ("pad_variable_length_inputs", 7, "plain bool"),
    ("enable_large_batch_splitting", 8, "bool"),
    ("max_execution_batch_size", 9, "int64"),
]


class ConfigFileError(ValueError):
    """A config file that does not parse as its TF Serving message; the message names the file."""


def _field(message, name, number, kind):
    field = message.field.add(name=name, number=number, label=_FIELD.LABEL_OPTIONAL)
    if kind == "repeated int64":
        field.label, field.type = _FIELD.LABEL_REPEATED, _FIELD.TYPE_INT64
    elif kind == "plain bool":
        field.type = _FIELD.TYPE_BOOL
    else:
        field.type, field.type_name = _FIELD.TYPE_MESSAGE, _WRAPPERS[kind]


@functools.cache
def _mirrored_classes() -> dict:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    prometheus = monitoring.message_type.add(name="PrometheusConfig")
    prometheus.field.add(
        name="enable", number=1, label=_FIELD.LABEL_OPTIONAL, type=_FIELD.TYPE_BOOL
    )
    prometheus.field.add(
        name="path", number=2, label=_FIELD.LABEL_OPTIONAL, type=_FIELD.TYPE_STRING
    )
    config = monitoring.message_type.add(name="MonitoringConfig")
    config.field.add(
        name="prometheus_config",
        number=1,
        label=_FIELD.LABEL_OPTIONAL,
        type=_FIELD.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    pool.Add(monitoring)

    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    parameters = batching.message_type.add(name="BatchingParameters")
    for name, number, kind in _BATCHING_FIELDS:
        _field(parameters, name, number, kind)
    pool.Add(batching)

    factory = message_factory.MessageFactory(pool)
    return {
        name: factory.GetPrototype(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("MonitoringConfig", "PrometheusConfig", "BatchingParameters")
    }


def monitoring_config_class():
    try:
        from tensorflow_serving.config import (
            monitoring_config_pb2,  # not in the 2.16.1 wheel
        )

        return monitoring_config_pb2.MonitoringConfig
    except ImportError:
        return _mirrored_classes()["MonitoringConfig"]


def batching_parameters_class():
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        return _mirrored_classes()["BatchingParameters"]


def _parse(path: str | Path, message_class):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigFileError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return text_format.Parse(text, message_class())
    except text_format.ParseError as e:
        raise ConfigFileError(
            f"{path}: not a {message_class.DESCRIPTOR.name} text proto: {e}"
        ) from None


def read_model_server_config(path) -> model_server_config_pb2.ModelServerConfig:
    return _parse(path, model_server_config_pb2.ModelServerConfig)


def read_monitoring_config(path):
    return _parse(path, monitoring_config_class())


def read_batching_parameters(path):
    return _parse(path, batching_parameters_class())
