"""Serving benchmark: what REST and gRPC cost over calling the model in process, and what the
local server's batching buys under concurrent single-image requests.

    python -m benchmarks.serving_benchmark [--duration 10] [--rounds 2] [--concurrency 16]
        [--batch-sizes 1 32] [--model-dir DIR] [--output results.json]

The model is a line model at the real geometry (LineModelCtc / line_lstm_ctc, lines of up to 34
characters, images scaled to 28 x 952): the newest version pushed by the lines benchmark
(`--pushed-dir`, default artifacts/lines_benchmark/line_lstm_ctc/serving/lines) if there is one,
else the same network untrained, exported as the Pusher would (the CPU cost is the same; the
predictions are meaningless). `--model-dir` names a SavedModel (or a model's version directory)
to use instead. Every request carries the same 28 x 952 PNG of a line of strokes (`--image` for
another).

Two kinds of cells, all measured in this one run:

1. One client sending requests of 1 and of 32 images back to back: in process (the SavedModel's
   `serving_default` called directly on the encoded PNGs, outputs fetched as numpy), over REST
   (`{"instances": [{"b64": ...}]}`, JSON answer parsed) and over gRPC (PredictionService.Predict,
   tensors converted back to numpy) against the local server on 127.0.0.1; requests/s, images/s,
   latency p50/p95, and REST and gRPC as ratios to in process.
2. `--concurrency` client threads sending single-image requests, over REST and gRPC, to the
   local server without and with batching (`--enable_batching --batching_parameters_file
   serving/config/batching.config`); requests/s, latency p50/p95, and the model calls the server
   made (from its Prometheus metrics), so images per model call.

The servers run as separate processes (`python -m serving.local_server`, as deployed, so clients
and server do not share a Python interpreter); the clients are threads of this process, built
lean (a requests.Session or a gRPC stub, no image validation) so that the figures are the
serving path's. Each cell runs for `--duration` seconds split into `--rounds` slices, and the
slices of all cells are interleaved, so that a background load drifting over the run hits every
cell alike. Prints JSON, then Markdown tables (docs/benchmarks.md, "Serving", records a run).
"""

import argparse
import base64
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.load_test import default_image, report, run
from common.push_layout import LINES_MODEL
from common.signatures import IMAGE_BYTES_INPUT, SERVING_SIGNATURE

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PUSHED_DIR = (
    REPO / "artifacts" / "lines_benchmark" / "line_lstm_ctc" / "serving" / LINES_MODEL
)
BATCHING_CONFIG = REPO / "serving" / "config" / "batching.config"
MONITORING_CONFIG = REPO / "serving" / "config" / "monitoring.config"
METRICS_PATH = "/monitoring/prometheus/metrics"
MAX_LENGTH = 34  # characters per line, as in benchmarks.lines_benchmark
LINE_SHAPE = (28, 28 * MAX_LENGTH, 1)
MODEL_NAME = LINES_MODEL
SERVER_START_TIMEOUT = 300


# --- the model and the image ---------------------------------------------------------------


def newest_version(path: Path) -> Path | None:
    """`path` if it is a SavedModel, else its newest pushed version (common.push_layout) or
    None."""
    from serving.predictors import PredictionError, resolve_model_dir  # imports TensorFlow

    try:
        return resolve_model_dir(path)
    except PredictionError:
        return None


def export_untrained(path: Path) -> Path:
    """LineModelCtc (line_lstm_ctc, default network arguments) for 34-character lines, random
    weights, exported by trainer.export as the Trainer does."""
    from trainer.export import export_untrained_line_model

    export_untrained_line_model(
        {
            "dataset": "EmnistLinesDataset",
            "model": "LineModelCtc",
            "network": "line_lstm_ctc",
            "dataset_args": {"max_length": MAX_LENGTH},
        },
        path,
    )
    return path


def line_png(width: int = LINE_SHAPE[1], height: int = LINE_SHAPE[0]) -> bytes:
    """A white line image with dark pen-like strokes all along it, as PNG."""
    return default_image(width, height)


# --- targets: one call = one request -------------------------------------------------------


@functools.cache
def serving_function(model_dir: Path):
    import tensorflow as tf

    return tf.saved_model.load(str(model_dir)).signatures[SERVING_SIGNATURE]


class InProcess:
    """The SavedModel's serving_default on a batch of encoded images, outputs as numpy."""

    def __init__(self, model_dir: Path, image: bytes, batch: int):
        import tensorflow as tf

        self.function = serving_function(model_dir)
        self.images = tf.constant([image] * batch)
        self.batch = batch

    def __call__(self) -> None:
        outputs = self.function(**{IMAGE_BYTES_INPUT: self.images})
        outputs = {name: value.numpy() for name, value in outputs.items()}
        if len(outputs["text"]) != self.batch:
            raise RuntimeError(f"{len(outputs['text'])} predictions for {self.batch} images")


class Rest:
    """POST /v1/models/lines:predict with b64 instances; the JSON answer parsed."""

    def __init__(self, url: str, image: bytes, batch: int, timeout: float):
        self.url = f"{url}/v1/models/{MODEL_NAME}:predict"
        self.b64 = base64.b64encode(image).decode("ascii")
        self.batch, self.timeout = batch, timeout
        self._local = threading.local()

    def __call__(self) -> None:
        import requests

        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        body = json.dumps({"instances": [{"b64": self.b64}] * self.batch})
        response = self._local.session.post(
            self.url, data=body, timeout=self.timeout, headers={"Content-Type": "application/json"}
        )
        payload = response.json()
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {payload.get('error', '')}"[:200])
        if len(payload["predictions"]) != self.batch:
            raise RuntimeError(f"{len(payload['predictions'])} predictions for {self.batch} images")


class Grpc:
    """PredictionService.Predict with an image_bytes tensor; the outputs converted to numpy."""

    def __init__(self, target: str, image: bytes, batch: int, timeout: float):
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self._tf, self._predict_pb2 = tf, predict_pb2
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", 64 << 20),
                ("grpc.max_receive_message_length", 64 << 20),
            ],
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.images = [image] * batch
        self.batch, self.timeout = batch, timeout

    def __call__(self) -> None:
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs[IMAGE_BYTES_INPUT].CopyFrom(self._tf.make_tensor_proto(self.images))
        response = self.stub.Predict(request, timeout=self.timeout)
        outputs = {name: self._tf.make_ndarray(proto) for name, proto in response.outputs.items()}
        if len(outputs["text"]) != self.batch:
            raise RuntimeError(f"{len(outputs['text'])} predictions for {self.batch} images")

    def close(self) -> None:
        self.channel.close()


# --- encoding alone ------------------------------------------------------------------------


def codec_ms(model_dir: Path, image: bytes, batch: int, repeats: int) -> dict:
    """Median CPU milliseconds per request of the encoding work alone, client and server side
    together, with the server's own functions: REST = request JSON with base64 built, parsed and
    decoded, answer JSON built and parsed; gRPC = request and answer TensorProtos built,
    serialized, parsed and converted to numpy. No sockets, threads or model."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from serving.local_server.models import read_signature_defs
    from serving.local_server.rest_json import JsonDecoder, request_inputs, response_json

    images = [image] * batch
    outputs = {
        name: value.numpy()
        for name, value in serving_function(model_dir)(
            **{IMAGE_BYTES_INPUT: tf.constant(images)}
        ).items()
    }
    inputs_info = read_signature_defs(model_dir)[SERVING_SIGNATURE].inputs
    decoder = JsonDecoder(64 << 20)
    b64 = base64.b64encode(image).decode("ascii")

    def rest():
        body = json.dumps({"instances": [{"b64": b64}] * batch}).encode()
        _, row_format = request_inputs(json.loads(body), inputs_info, decoder)
        answer = json.dumps(response_json(outputs, row_format), indent=1).encode()
        json.loads(answer)

    def grpc_():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(images))
        received = predict_pb2.PredictRequest.FromString(request.SerializeToString())
        tf.make_ndarray(received.inputs[IMAGE_BYTES_INPUT])
        response = predict_pb2.PredictResponse()
        for name, array in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(array))
        answer = predict_pb2.PredictResponse.FromString(response.SerializeToString())
        _ = {name: tf.make_ndarray(proto) for name, proto in answer.outputs.items()}

    result = {}
    for name, function in (("REST", rest), ("gRPC", grpc_)):
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            function()
            times.append(time.perf_counter() - begin)
        result[name] = round(float(np.median(times)) * 1000, 3)
    return result


# --- local servers -------------------------------------------------------------------------


class ServerProcess:
    """`python -m serving.local_server` over a models directory, on free ports."""

    def __init__(self, models_dir: Path, log_path: Path, batching: bool, grpc_threads: int):
        command = [
            sys.executable,
            "-m",
            "serving.local_server",
            "--models_dir",
            str(models_dir),
            "--rest_port",
            "0",
            "--grpc_port",
            "0",
            "--file_system_poll_wait_seconds",
            "0",
            "--monitoring_config_file",
            str(MONITORING_CONFIG),
            "--grpc_max_threads",
            str(grpc_threads),
        ]
        if batching:
            command += ["--enable_batching", "--batching_parameters_file", str(BATCHING_CONFIG)]
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - open while the server runs
        env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=self.log, env=env, text=True
        )
        self.banner = self._wait_for_banner()
        match = re.search(r"REST (http://\S+) and gRPC (\S+);", self.banner)
        if not match:
            self.stop()
            raise RuntimeError(f"unexpected server banner: {self.banner!r}")
        self.rest_url, self.grpc_target = match.groups()

    def _wait_for_banner(self) -> str:
        found: list[str] = []
        stdout = self.process.stdout
        assert stdout is not None  # started with stdout=PIPE
        reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(SERVER_START_TIMEOUT)
        if not found or not found[0]:
            self.stop()
            raise RuntimeError(
                f"the local server did not start; see {self.log_path}:\n"
                + self.log_path.read_text()[-2000:]
            )
        return found[0].strip()

    def model_calls(self) -> tuple:
        """(model calls, images) the server has run so far, from its Prometheus metrics."""
        with urllib.request.urlopen(self.rest_url + METRICS_PATH, timeout=30) as response:
            text = response.read().decode()
        totals = []
        for name in ("local_server_model_calls_total", "local_server_model_call_examples_total"):
            totals.append(
                sum(
                    int(value)
                    for value in re.findall(rf"^{name}\{{[^}}]*\}} (\d+)$", text, re.MULTILINE)
                )
            )
        return tuple(totals)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# --- measuring -----------------------------------------------------------------------------


class Cell:
    """One configuration, measured in slices; its requests' latencies and counts pooled."""

    def __init__(self, name: str, target, concurrency: int, batch: int, server=None, **labels):
        self.name, self.target, self.concurrency, self.batch = name, target, concurrency, batch
        self.server = server
        self.labels = labels
        self.latencies: list[float] = []
        self.errors: Counter = Counter()
        self.wall = 0.0
        self.model_calls, self.model_images = 0, 0

    def measure(self, seconds: float) -> None:
        before = self.server.model_calls() if self.server else (0, 0)
        result = run(self.target, self.concurrency, seconds, 10**9)
        if self.server:
            after = self.server.model_calls()
            self.model_calls += after[0] - before[0]
            self.model_images += after[1] - before[1]
        self.latencies += result["latencies"]
        self.errors.update(result["errors"])
        self.wall += result["wall_seconds"]

    def result(self) -> dict:
        figures = report(
            {"wall_seconds": self.wall, "latencies": self.latencies, "errors": self.errors},
            self.concurrency,
            self.batch,
        )
        figures.update(self.labels)
        if self.server:
            figures["model_calls"] = self.model_calls
            figures["images_per_model_call"] = (
                round(self.model_images / self.model_calls, 2) if self.model_calls else None
            )
        return figures


def interleaved(cells: list, duration: float, rounds: int, warmup: int) -> None:
    for cell in cells:
        for _ in range(warmup):
            cell.target()
    for round_index in range(rounds):
        for cell in cells:
            cell.measure(duration / rounds)
            print(
                f"  round {round_index + 1}/{rounds} {cell.name}: {len(cell.latencies)} requests",
                file=sys.stderr,
                flush=True,
            )


def _ratio(value, reference):
    return round(value / reference, 3) if value and reference else None


# --- the run -------------------------------------------------------------------------------


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving_benchmark", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds measured per cell, split over the rounds (10)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="slices each cell's time is split into, interleaved with the other cells' (2)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="requests per cell not counted (3)")
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[1, 32],
        help="images per request in the one-client cells (1 32)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="client threads in the batching cells, one image a request (16)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="SavedModel (or model directory of "
        "versions) to serve instead of the pushed or untrained line model",
    )
    parser.add_argument(
        "--pushed-dir",
        type=Path,
        default=DEFAULT_PUSHED_DIR,
        help="where the lines benchmark pushes line_lstm_ctc (used if it holds a version)",
    )
    parser.add_argument("--image", type=Path, help="image file to send (default: a 28 x 952 line)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (60)")
    parser.add_argument(
        "--codec-repeats",
        type=int,
        default=200,
        help="repetitions of the encoding-alone measurement (200)",
    )
    parser.add_argument("--output", type=Path, help="also write the JSON results here")
    args = parser.parse_args(argv)
    if args.duration <= 0 or min(args.rounds, args.concurrency, args.codec_repeats) < 1:
        parser.error("--duration, --rounds, --concurrency and --codec-repeats must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if any(b < 1 for b in args.batch_sizes):
        parser.error("--batch-sizes must be positive")
    if args.image is not None and not args.image.is_file():
        parser.error(f"image file not found: {args.image}")
    return args


def main(argv=None) -> int:
    args = _parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="serving-benchmark-"))
    servers, grpc_targets = [], []
    try:
        if args.model_dir is not None:
            model_dir, source = newest_version(args.model_dir), f"--model-dir {args.model_dir}"
            if model_dir is None:
                sys.exit(f"error: {args.model_dir} holds no SavedModel")
        elif (pushed := newest_version(args.pushed_dir)) is not None:
            model_dir, source = pushed, f"trained, pushed to {pushed}"
        else:
            print(
                "exporting an untrained LineModelCtc (no pushed model found) ...", file=sys.stderr
            )
            model_dir = export_untrained(work / "untrained")
            source = (
                f"untrained LineModelCtc/line_lstm_ctc, max_length {MAX_LENGTH} "
                f"({args.pushed_dir} holds no pushed version)"
            )
        models_dir = work / "models"
        shutil.copytree(model_dir, models_dir / MODEL_NAME / "1")
        image = args.image.read_bytes() if args.image else line_png()

        print("starting the local servers ...", file=sys.stderr, flush=True)
        grpc_threads = max(8, 2 * args.concurrency)
        plain = ServerProcess(models_dir, work / "server.log", False, grpc_threads)
        servers.append(plain)
        batching = ServerProcess(models_dir, work / "server-batching.log", True, grpc_threads)
        servers.append(batching)

        load_before = os.getloadavg()
        started = time.time()
        cells = []
        for batch in args.batch_sizes:
            cells.append(
                Cell(
                    f"in-process b{batch}",
                    InProcess(model_dir, image, batch),
                    1,
                    batch,
                    path="in-process",
                )
            )
            cells.append(
                Cell(
                    f"REST b{batch}",
                    Rest(plain.rest_url, image, batch, args.timeout),
                    1,
                    batch,
                    path="REST",
                )
            )
            grpc_target = Grpc(plain.grpc_target, image, batch, args.timeout)
            grpc_targets.append(grpc_target)
            cells.append(Cell(f"gRPC b{batch}", grpc_target, 1, batch, path="gRPC"))
        concurrent = []
        for api in ("REST", "gRPC"):
            for server, on in ((plain, False), (batching, True)):
                target: Rest | Grpc
                if api == "REST":
                    target = Rest(server.rest_url, image, 1, args.timeout)
                else:
                    target = Grpc(server.grpc_target, image, 1, args.timeout)
                    grpc_targets.append(target)
                concurrent.append(
                    Cell(
                        f"{api} x{args.concurrency} batching {'on' if on else 'off'}",
                        target,
                        args.concurrency,
                        1,
                        server,
                        api=api,
                        batching=on,
                    )
                )
        print(
            f"measuring {len(cells) + len(concurrent)} cells, {args.duration:g} s each ...",
            file=sys.stderr,
            flush=True,
        )
        interleaved(cells + concurrent, args.duration, args.rounds, args.warmup)
        load_after = os.getloadavg()
        codec = {
            batch: codec_ms(model_dir, image, batch, args.codec_repeats)
            for batch in args.batch_sizes
        }

        single = [cell.result() for cell in cells]
        for figures in single:
            reference = next(
                f
                for f in single
                if f["path"] == "in-process" and f["batch_size"] == figures["batch_size"]
            )
            figures["requests_per_second_vs_in_process"] = _ratio(
                figures["requests_per_second"], reference["requests_per_second"]
            )
            for q in ("p50", "p95"):
                figures[f"latency_{q}_vs_in_process"] = _ratio(
                    figures["latency_ms"][q], reference["latency_ms"][q]
                )
            if figures["path"] != "in-process" and figures["latency_ms"]["p50"] is not None:
                figures["latency_p50_added_ms"] = round(
                    figures["latency_ms"]["p50"] - reference["latency_ms"]["p50"], 2
                )
                figures["encoding_ms"] = codec[figures["batch_size"]][figures["path"]]
        many = [cell.result() for cell in concurrent]
        for figures in many:
            if figures["batching"]:
                off = next(f for f in many if f["api"] == figures["api"] and not f["batching"])
                figures["requests_per_second_vs_batching_off"] = _ratio(
                    figures["requests_per_second"], off["requests_per_second"]
                )
        import tensorflow as tf

        results = {
            "model": source,
            "image": f"{len(image)}-byte PNG"
            + (
                f" ({args.image})"
                if args.image
                else f" of {LINE_SHAPE[0]} x {LINE_SHAPE[1]} pixels"
            ),
            "batching_config": _batching_summary(),
            "duration_per_cell_s": args.duration,
            "rounds": args.rounds,
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
            "wall_seconds": round(time.time() - started, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "tensorflow": tf.__version__,
                "load_average_1min_before_after": [
                    round(load_before[0], 2),
                    round(load_after[0], 2),
                ],
            },
            "one_client": single,
            "concurrent": many,
        }
        print(json.dumps(results, indent=2))
        if args.output:
            args.output.write_text(json.dumps(results, indent=2) + "\n")
        print()
        print(markdown(results, args.concurrency))
        return 0
    finally:
        for opened in grpc_targets:
            opened.close()
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _batching_summary() -> str:
    from serving.local_server import BatchingOptions

    options = BatchingOptions.from_file(BATCHING_CONFIG)
    return (
        f"max_batch_size {options.max_batch_size}, batch_timeout_micros "
        f"{options.batch_timeout_micros}, max_enqueued_batches {options.max_enqueued_batches}, "
        f"num_batch_threads {options.num_batch_threads}"
    )


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ms2(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _x(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(results: dict, concurrency: int) -> str:
    lines = [
        "One client, requests back to back:",
        "",
        (
            "| path | images/request | req/s | images/s | p50 ms | p95 ms | req/s vs in-process "
            "| p50 vs in-process | p95 vs in-process | p50 added ms | of which encoding ms "
            "| errors |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in results["one_client"]:
        lines.append(
            f"| {f['path']} | {f['batch_size']} | {f['requests_per_second']:.1f} | "
            f"{f['images_per_second']:.1f} | {_ms(f['latency_ms']['p50'])} | "
            f"{_ms(f['latency_ms']['p95'])} | {_x(f['requests_per_second_vs_in_process'])} | "
            f"{_x(f['latency_p50_vs_in_process'])} | {_x(f['latency_p95_vs_in_process'])} | "
            f"{_ms2(f.get('latency_p50_added_ms'))} | {_ms2(f.get('encoding_ms'))} | "
            f"{f['errors']} |"
        )
    lines += [
        "",
        (
            f"{concurrency} clients, one image per request, local server with batching "
            f"off and on ({results['batching_config']}):"
        ),
        "",
        (
            "| API | batching | req/s (= images/s) | p50 ms | p95 ms | model calls | images per "
            "model call | req/s vs batching off | errors |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in results["concurrent"]:
        lines.append(
            f"| {f['api']} | {'on' if f['batching'] else 'off'} | {f['requests_per_second']:.1f} | "
            f"{_ms(f['latency_ms']['p50'])} | {_ms(f['latency_ms']['p95'])} | {f['model_calls']} | "
            f"{f['images_per_model_call'] if f['images_per_model_call'] is not None else '-'} | "
            f"{_x(f.get('requests_per_second_vs_batching_off')) if f['batching'] else ''} | "
            f"{f['errors']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
