"""TF Serving's gRPC services over the local server: PredictionService (Predict,
GetModelMetadata) and ModelService (GetModelStatus), with TF Serving's status codes."""

import logging

import tensorflow as tf
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.errors import INTERNAL_ERROR, ServingError, invalid, too_large
from serving.local_server.models import SIGNATURE_DEF_FIELD, metadata_response

logger = logging.getLogger("serving.local_server")


def _grpc_call(context, metrics, model: str, function):
    try:
        return function()
    except ServingError as e:
        metrics.count(model, e.code.name)
        message = e.message
        code = e.code
    except Exception:  # a bug must cost one request, not the server
        logger.exception("gRPC request failed")
        metrics.count(model, INTERNAL_ERROR.code.name)
        code, message = INTERNAL_ERROR.code, INTERNAL_ERROR.message
    context.abort(code, message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, owner):  # a LocalModelServer
        self.owner = owner

    def Predict(self, request, context):
        return _grpc_call(
            context, self.owner.metrics, request.model_spec.name, lambda: self._predict(request)
        )

    def _predict(self, request):
        servable = self.owner.manager.resolve_spec(request.model_spec)
        signature_name, signature_def = servable.signature(
            request.model_spec.signature_name, grpc_api=True
        )
        inputs = {}
        for alias, proto in request.inputs.items():
            info = signature_def.inputs.get(alias)
            if info is not None and proto.dtype != info.dtype:
                raise invalid(
                    f"input {alias}: expects {tf.dtypes.as_dtype(info.dtype).name} but "
                    f"{tf.dtypes.as_dtype(proto.dtype).name} is provided"
                )
            try:
                inputs[alias] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                raise invalid(f"input {alias}: not a valid TensorProto ({e})") from None
            if inputs[alias].dtype == object:
                largest = max((len(v) for v in inputs[alias].flat), default=0)
                if largest > self.owner.max_image_bytes:
                    raise too_large(
                        f"a binary value of {largest} bytes exceeds the limit of "
                        f"{self.owner.max_image_bytes} bytes (--max_image_bytes)"
                    )
        outputs = self.owner.predict(servable, signature_name, inputs, tuple(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for alias, array in outputs.items():
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(array))
        self.owner.metrics.count(servable.name, "OK")
        return response

    def GetModelMetadata(self, request, context):
        return _grpc_call(
            context, self.owner.metrics, request.model_spec.name, lambda: self._metadata(request)
        )

    def _metadata(self, request):
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid(f"Metadata field {field} is not supported")
        response = metadata_response(self.owner.manager.resolve_spec(request.model_spec))
        self.owner.metrics.count(request.model_spec.name, "OK")
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, owner):  # a LocalModelServer
        self.owner = owner

    def GetModelStatus(self, request, context):
        def status():
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            spec = request.model_spec
            version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
            return self.owner.manager.status(spec.name, version)

        return _grpc_call(context, self.owner.metrics, request.model_spec.name, status)
