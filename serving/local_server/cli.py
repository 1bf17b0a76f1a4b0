"""`python -m serving.local_server`: TF Serving's command line, for the local server.

The flags are TF Serving's where it has them (`--model_config_file`, `--rest_api_port`,
`--port`, `--file_system_poll_wait_seconds`, `--enable_batching`, ...), plus `--models_dir`,
`--model_base_path_root` and the size limits that only the local server has.
"""

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from common.signatures import DEFAULT_MAX_BATCH, DEFAULT_MAX_PIXELS
from serving.config_protos import read_monitoring_config
from serving.local_server.batching import BatchingOptions
from serving.local_server.manager import ModelManager
from serving.local_server.models import CONTAINER_MODELS_DIR, sources_from_config
from serving.local_server.rest import MiB
from serving.local_server.server import LocalModelServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving.local_server",
        description="Serve pushed models over TF Serving's REST and gRPC APIs without Docker. "
        "Production uses TensorFlow Serving (serving/docker-compose.yml); this server exists so "
        "the same clients and contract tests run on machines without it.",
    )
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument(
        "--model_config_file",
        help="TF Serving ModelServerConfig text proto (serving/config/models.config)",
    )
    models.add_argument(
        "--models_dir",
        help="serve every model directory found here (rescanned while running), "
        "each with its --num_versions newest versions",
    )
    parser.add_argument(
        "--model_base_path_root",
        help="with --model_config_file: the local directory that base paths under "
        f"{CONTAINER_MODELS_DIR} (the container's mount) and relative base paths "
        "are read from, e.g. artifacts/serving",
    )
    parser.add_argument(
        "--num_versions",
        type=int,
        default=1,
        help="with --models_dir: versions of each model to keep loaded (1)",
    )
    parser.add_argument(
        "--rest_port",
        "--rest_api_port",
        type=int,
        default=8501,
        help="REST port (8501); 0 picks a free one",
    )
    parser.add_argument(
        "--grpc_port", "--port", type=int, default=8500, help="gRPC port (8500); 0 picks a free one"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1; 0.0.0.0 for all interfaces)",
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between looks for new versions (1); 0 looks only at start-up",
    )
    parser.add_argument(
        "--max_request_bytes",
        type=int,
        default=32 * MiB,
        help="largest REST body / gRPC message accepted (32 MiB); larger: 413",
    )
    parser.add_argument(
        "--max_image_bytes",
        type=int,
        default=10 * MiB,
        help="largest single binary value, e.g. one image (10 MiB); larger: 413",
    )
    parser.add_argument(
        "--max_image_pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="largest image by its header's width x height, checked before "
        f"decoding ({DEFAULT_MAX_PIXELS}, the exported models' own limit); "
        "larger: 413",
    )
    parser.add_argument(
        "--max_batch_images",
        type=int,
        default=DEFAULT_MAX_BATCH,
        help=f"most images in one Predict request ({DEFAULT_MAX_BATCH}, the "
        "exported models' own limit); more: 413",
    )
    parser.add_argument(
        "--monitoring_config_file",
        help="TF Serving MonitoringConfig; serves request counts at its "
        "Prometheus path when enabled",
    )
    parser.add_argument(
        "--enable_batching",
        nargs="?",
        const=True,
        default=False,
        type=_flag,
        metavar="true|false",
        help="merge concurrent Predict calls for the same model version and "
        "signature into one model call (TF Serving's flag; see "
        "--batching_parameters_file)",
    )
    parser.add_argument(
        "--batching_parameters_file",
        help="TF Serving BatchingParameters text proto "
        "(serving/config/batching.config): max_batch_size, batch_timeout_micros, "
        "max_enqueued_batches, num_batch_threads; without it, TF Serving's "
        "defaults (1000, 0, 10, one thread per CPU)",
    )
    parser.add_argument(
        "--grpc_max_threads",
        type=int,
        default=8,
        help="threads answering gRPC calls (8); at most this many gRPC Predict "
        "calls are in flight, and so can be batched together",
    )
    parser.add_argument(
        "--allow_version_labels_for_unavailable_models",
        action="store_true",
        help="accepted for compatibility with TF Serving's command line; the "
        "local server always allows such labels",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def _flag(text: str) -> bool:
    """A boolean flag's value as TF Serving takes it: --flag, --flag=true, --flag=false."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_server(argv=None) -> LocalModelServer:
    """A (not yet started) server from command-line arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    for flag in ("rest_port", "grpc_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            parser.error(f"--{flag}: {getattr(args, flag)} is not a port number")
    if args.file_system_poll_wait_seconds < 0:
        parser.error("--file_system_poll_wait_seconds must not be negative")
    if (
        min(
            args.max_request_bytes,
            args.max_image_bytes,
            args.max_image_pixels,
            args.max_batch_images,
        )
        <= 0
    ):
        parser.error(
            "--max_request_bytes, --max_image_bytes, --max_image_pixels and "
            "--max_batch_images must be positive"
        )
    if args.model_base_path_root and not args.model_config_file:
        parser.error("--model_base_path_root goes with --model_config_file")
    if args.batching_parameters_file and not args.enable_batching:
        parser.error(
            "--batching_parameters_file is set without --enable_batching (TF Serving "
            "refuses this too)"
        )
    if args.grpc_max_threads < 1:
        parser.error("--grpc_max_threads must be at least 1")
    try:
        if args.model_config_file:
            manager = ModelManager(
                sources_from_config(args.model_config_file, args.model_base_path_root),
                poll_seconds=args.file_system_poll_wait_seconds,
            )
        else:
            if not Path(args.models_dir).is_dir():
                parser.error(f"--models_dir: {args.models_dir} is not a directory")
            manager = ModelManager(
                models_dir=args.models_dir,
                num_versions=args.num_versions,
                poll_seconds=args.file_system_poll_wait_seconds,
            )
        metrics_path = None
        if args.monitoring_config_file:
            prometheus = read_monitoring_config(args.monitoring_config_file).prometheus_config
            if prometheus.enable:
                metrics_path = prometheus.path or "/monitoring/prometheus/metrics"
        batching = None
        if args.enable_batching:
            batching = (
                BatchingOptions.from_file(args.batching_parameters_file)
                if args.batching_parameters_file
                else BatchingOptions()
            )
    except ValueError as e:  # includes ConfigFileError
        parser.error(str(e))
    return LocalModelServer(
        manager,
        host=args.host,
        rest_port=args.rest_port,
        grpc_port=args.grpc_port,
        max_request_bytes=args.max_request_bytes,
        max_image_bytes=args.max_image_bytes,
        metrics_path=metrics_path,
        grpc_workers=args.grpc_max_threads,
        batching=batching,
        max_image_pixels=args.max_image_pixels,
        max_batch_images=args.max_batch_images,
    )


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.DEBUG if "--verbose" in argv else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    server = build_server(argv)
    try:
        server.start()
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    models = ", ".join(
        f"{name} {versions}" for name, versions in server.manager.available().items()
    )
    options = server.batching
    batching = (
        f"batching up to {options.max_batch_size} examples, {options.batch_timeout_micros} "
        f"us timeout, {options.num_batch_threads} threads, {options.max_enqueued_batches} "
        "batches queued"
        if options
        else "no batching"
    )
    print(
        f"Local model server (a stand-in for TF Serving) on REST {server.rest_url} and gRPC "
        f"{server.grpc_target}; serving {models or 'no models yet'}; {batching}",
        flush=True,
    )
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0
