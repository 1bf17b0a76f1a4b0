"""The gRPC client of TF Serving's PredictionService and ModelService (see serving.client).

Its own module because TF Serving's protos (`tensorflow_serving.apis`) import all of TensorFlow:
`serving.client` and the app load it only when a gRPC client is made.
"""

from collections.abc import Sequence

import grpc
import tensorflow as tf
from google.protobuf.wrappers_pb2 import Int64Value
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from common.push_layout import LINES_MODEL
from common.signatures import CHARACTER_CONFIDENCES, IMAGE_BYTES_INPUT, SERVING_SIGNATURE
from serving.client import (
    DEFAULT_GRPC_ADDRESS,
    DEFAULT_TIMEOUT,
    Prediction,
    character_confidences,
    check_count,
    check_spec,
    encode_all,
    text_key,
)
from serving.errors import ServingError
from serving.images import ImageInput


class GrpcClient:
    """TF Serving's gRPC PredictionService (and ModelService for status); thread-safe."""

    def __init__(
        self,
        address: str = DEFAULT_GRPC_ADDRESS,
        model: str = LINES_MODEL,
        version: int | None = None,
        label: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_bytes: int = 64 * 1024 * 1024,
    ):
        self.version = check_spec(model, version, label)
        self.address, self.model, self.label, self.timeout = address, model, label, timeout
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self._channel = grpc.insecure_channel(address, options=options)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel).Predict
        self._status = model_service_pb2_grpc.ModelServiceStub(self._channel).GetModelStatus

    def _model_spec(self, spec, version: int | None = None) -> None:
        spec.name = self.model
        version = self.version if version is None else version
        if version is not None:
            spec.version.CopyFrom(Int64Value(value=version))
        elif self.label is not None:
            spec.version_label = self.label

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code() if callable(getattr(e, "code", None)) else None
            code = code or grpc.StatusCode.UNKNOWN
            details = e.details() if callable(getattr(e, "details", None)) else str(e)
            if code == grpc.StatusCode.UNAVAILABLE:
                details = f"{self.address}: {details}"
            raise ServingError(code, details or code.name) from None

    def predict(self, images: Sequence[ImageInput], version: int | None = None) -> list:
        """One Prediction per image; `version` overrides the client's version for this call."""
        encoded = encode_all(images)
        outputs = self.predict_outputs(encoded, version)
        key = text_key(outputs.keys())
        if "confidence" not in outputs:
            raise ServingError(grpc.StatusCode.INTERNAL, "response has no confidence output", 502)
        texts = tf.make_ndarray(outputs[key]).reshape(-1)
        confidences = tf.make_ndarray(outputs["confidence"]).reshape(-1)
        chars = (
            tf.make_ndarray(outputs[CHARACTER_CONFIDENCES])
            if CHARACTER_CONFIDENCES in outputs
            else [None] * len(texts)
        )
        predictions = []
        for t, c, row in zip(texts, confidences, chars):
            text = t.decode("utf-8", errors="replace")
            predictions.append(Prediction(text, float(c), character_confidences(text, row)))
        return check_count(predictions, len(encoded))

    def predict_outputs(self, encoded: list, version: int | None = None, only: Sequence[str] = ()):
        """The serving signature's outputs ({name: TensorProto}) for encoded images; `only`
        names the outputs to compute (all when empty)."""
        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, version)
        request.model_spec.signature_name = SERVING_SIGNATURE
        request.output_filter.extend(only)
        request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(encoded, dtype=tf.string))
        return self._call(self._predict, request).outputs

    def status(self) -> list:
        """[{"version": int, "state": "AVAILABLE", "error": ""}, ...] for the model's versions."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model
        if self.version is not None:  # GetModelStatus takes a version, not a label
            request.model_spec.version.CopyFrom(Int64Value(value=self.version))
        response = self._call(self._status, request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [
            {
                "version": s.version,
                "state": state_name(s.state),
                "error": s.status.error_message,
            }
            for s in response.model_version_status
        ]

    def ready(self) -> bool:
        """Whether some (or the requested) version of the model is AVAILABLE."""
        return any(s["state"] == "AVAILABLE" for s in self.status())

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
