"""The local server: TF Serving's REST and gRPC APIs over a ModelManager, in one process.

REST is a Starlette app on uvicorn (`rest.py`), gRPC is grpcio (`grpc_services.py`); both run
Predict through `LocalModelServer.predict`, which checks the inputs and batches them when
batching is on (`batching.py`).
"""

import dataclasses
import logging
from concurrent import futures

import grpc
import numpy as np
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from common.signatures import DEFAULT_MAX_BATCH, DEFAULT_MAX_PIXELS, IMAGE_BYTES_INPUT
from serving.asgi import UvicornThread
from serving.errors import too_large
from serving.images import check_header
from serving.local_server.batching import Batcher, BatchingOptions
from serving.local_server.grpc_services import ModelService, PredictionService
from serving.local_server.manager import ModelManager
from serving.local_server.metrics import Metrics
from serving.local_server.models import Servable
from serving.local_server.rest import MiB, RestApi, rest_app

logger = logging.getLogger("serving.local_server")


class LocalModelServer:
    """REST and gRPC endpoints over a ModelManager. Port 0 picks a free port (see .rest_port).

    With `batching` (BatchingOptions), Predict calls go through a Batcher; otherwise each runs
    the model on its own, in its handler thread. `metrics` counts requests and model calls.

    Before the model runs, a request of more than `max_batch_images` images, or with an image
    whose header declares more than `max_image_pixels` pixels, is refused (413 /
    RESOURCE_EXHAUSTED): the exported models check the same limits (trainer/export.py), this
    answers before anything is decoded even for models exported without them."""

    def __init__(
        self,
        manager: ModelManager,
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        max_request_bytes: int = 32 * MiB,
        max_image_bytes: int = 10 * MiB,
        metrics_path: str | None = None,
        grpc_workers: int = 8,
        batching: BatchingOptions | None = None,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        max_batch_images: int = DEFAULT_MAX_BATCH,
    ):
        self.manager = manager
        self.host = host
        self.max_request_bytes = max_request_bytes
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self.max_batch_images = max_batch_images
        self.metrics_path = metrics_path
        self.metrics = Metrics(manager.model_names)
        self.batching = batching
        self.batcher = None
        if batching is not None:
            if batching.max_batch_size > max_batch_images:  # a merged call would be refused
                logger.warning(
                    "batching max_batch_size %d is over the models' limit of %d "
                    "images per call; batches are capped at %d",
                    batching.max_batch_size,
                    max_batch_images,
                    max_batch_images,
                )
                batching = dataclasses.replace(batching, max_batch_size=max_batch_images)
            self.batcher = Batcher(batching, self._execute)
        self.rest = RestApi(manager, max_image_bytes, self.predict)
        self._requested_ports = (rest_port, grpc_port)
        self._grpc_workers = grpc_workers
        self._http: UvicornThread | None = None
        self._grpc: grpc.Server | None = None
        self.rest_port: int | None = None
        self.grpc_port: int | None = None

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def predict(
        self, servable: Servable, signature_name: str, inputs: dict, output_filter: tuple = ()
    ) -> dict:
        """Checks a Predict request's inputs and runs it (in a batch when batching is on)."""
        signature_name, arrays, wanted = servable.prepare(signature_name, inputs, output_filter)
        images = arrays.get(IMAGE_BYTES_INPUT)
        if images is not None and images.dtype == object:
            self._check_images(images)
        if self.batcher is not None:
            return self.batcher.run(servable, signature_name, arrays, wanted)
        return self._execute(servable, signature_name, arrays, wanted)

    def _check_images(self, images: np.ndarray) -> None:
        if images.size > self.max_batch_images:
            raise too_large(
                f"a request of {images.size} images is more than the limit of "
                f"{self.max_batch_images} images per request (--max_batch_images)"
            )
        for index, image in enumerate(images.flat):
            check_header(
                image,
                self.max_image_pixels,
                f"{IMAGE_BYTES_INPUT}[{index}]",
                " (--max_image_pixels)",
            )

    def _execute(self, servable: Servable, signature_name: str, arrays: dict, wanted=()) -> dict:
        try:
            return servable.execute(signature_name, arrays, wanted)
        finally:
            examples = max((array.shape[0] for array in arrays.values() if array.ndim), default=1)
            self.metrics.model_call(servable.name, servable.version, signature_name, examples)

    def start(self) -> "LocalModelServer":
        self.manager.start()
        if self.batcher is not None:
            self.batcher.start()
        rest_port, grpc_port = self._requested_ports
        http = self._http = UvicornThread(rest_app(self), self.host, rest_port, name="rest-server")
        self.rest_port = http.port
        server = self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._grpc_workers),
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self), server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self), server)
        try:
            self.grpc_port = server.add_insecure_port(f"{self.host}:{grpc_port}")
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            http.stop()
            if self.batcher is not None:
                self.batcher.stop()
            self.manager.stop()
            raise OSError(f"cannot listen for gRPC on {self.host}:{grpc_port}")
        self._grpc.start()
        self._http.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait()
        if self._http is not None:
            self._http.stop()
        if self.batcher is not None:
            self.batcher.stop()
        self.manager.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
