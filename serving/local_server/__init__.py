"""A local stand-in for TensorFlow Serving, for machines without Docker.

**Production serves the pushed models with TensorFlow Serving** (`serving/docker-compose.yml`:
the official `tensorflow/serving:2.16.1` image with `serving/config/*.config`). This server exists
so that the same clients and the same contract tests (`tests/test_serving_contract.py`) run on a
machine without Docker or a TF Serving binary. It is not a production server: it runs the models
in this Python process (batching requests together only with `--enable_batching`), and has no
TLS or auth.

It serves the push directory (`<root>/<model name>/<integer version>/saved_model.pb`) over the
same APIs as TF Serving 2.16:

- REST: `GET /v1/models/<name>[/versions/<v>|/labels/<l>]` (model version status),
  `GET /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata` (signature defs) and
  `POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict` with `{"instances": [...]}` (row
  format) or `{"inputs": ...}` (columnar), binary values as `{"b64": "..."}`. Errors are
  `{"error": "..."}` with TF Serving's HTTP status codes (400 bad request, 404 unknown model or
  version); 413 for a body over `--max_request_bytes` or a binary value over
  `--max_image_bytes` (TF Serving itself has no such limits).
- gRPC: `tensorflow.serving.PredictionService/Predict` and `/GetModelMetadata`,
  `tensorflow.serving.ModelService/GetModelStatus`, with TF Serving's status codes.

Like TF Serving it polls the model base paths every `--file_system_poll_wait_seconds` and swaps
new versions in once loaded, under the config's version policy (`latest {num_versions: N}`,
`all`, `specific`); see `manager.py`.

With `--enable_batching [--batching_parameters_file F]` (TF Serving's flags; F is a
BatchingParameters text proto such as serving/config/batching.config), concurrent Predict calls
(REST and gRPC) for the same model version and signature are merged into one model call of at
most `max_batch_size` examples, waiting at most `batch_timeout_micros` for a batch to fill, run
by `num_batch_threads` threads; once `max_enqueued_batches` batches wait, further requests get
UNAVAILABLE (HTTP 503), as from TF Serving. See `Batcher` for how it differs from TF Serving
(requests larger than `max_batch_size` run on their own). The Prometheus metrics count model
calls and the examples they processed, so the effect of batching can be seen there.

Deliberate differences from TF Serving, as documented in README.md: labels in the model config
may point at versions that are not loaded yet (TF Serving needs
`--allow_version_labels_for_unavailable_models` for that; requests by such a label get 404 until
the version is available); the config file is read once at start-up; only `:predict` is served.
As in TF Serving, an unknown label is an INVALID_ARGUMENT (HTTP 400), and a status request by
label reports every version of the model.

    python -m serving.local_server --model_config_file serving/config/models.config \\
        --model_base_path_root artifacts/serving --rest_port 8501 --grpc_port 8500
    python -m serving.local_server --models_dir artifacts/serving   # every model found, newest version
    python -m serving.local_server --models_dir artifacts/serving --enable_batching \\
        --batching_parameters_file serving/config/batching.config

Modules: `models` (model sources from the config, one loaded version), `manager` (version
policy, labels, hot reload), `batching`, `rest_json` (TF Serving's REST JSON codec), `rest` (the
REST API on Starlette), `grpc_services`, `metrics`, `server` (LocalModelServer), `cli`.
"""

from serving.errors import ServingError
from serving.local_server.batching import Batcher, BatchingOptions
from serving.local_server.cli import build_server, main
from serving.local_server.manager import ModelManager
from serving.local_server.models import ModelSource, Servable, sources_from_config
from serving.local_server.server import LocalModelServer

__all__ = [
    "Batcher",
    "BatchingOptions",
    "LocalModelServer",
    "ModelManager",
    "ModelSource",
    "Servable",
    "ServingError",
    "build_server",
    "main",
    "sources_from_config",
]
