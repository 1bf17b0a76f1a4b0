"""Load test: N concurrent clients against the prediction app or TF Serving (REST or gRPC).

    python -m benchmarks.load_test --target app --url http://127.0.0.1:8000 -c 8 --duration 30
    python -m benchmarks.load_test --target rest --url http://127.0.0.1:8501 --batch-size 4
    python -m benchmarks.load_test --target grpc --url 127.0.0.1:8500 --model lines --image a.png

Each of `--concurrency` threads sends requests back to back (each request carries `--batch-size`
images; the app takes one image per request) until `--duration` seconds have passed or
`--max-requests` requests have been started, whichever comes first; requests in flight then
finish (each bounded by `--timeout`). After `--warmup` requests (not counted) it reports requests,
errors (by kind), throughput (requests/s and images/s) and latency percentiles (p50/p95/p99/max,
of successful requests), as text or, with `--json`, as one JSON object. Exit status 1 if every
request failed.
"""

import argparse
import base64
import io
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import requests

from common.push_layout import LINES_MODEL
from serving import client


def default_image(width: int = 140, height: int = 28) -> bytes:
    """A white PNG with dark pen-like strokes all along it, like a line of handwriting."""
    from PIL import Image

    rng = np.random.default_rng(0)
    image = np.full((height, width), 255, np.uint8)
    for x in range(4, width - 12, 14):
        top, left = rng.integers(3, 8), x + rng.integers(0, 4)
        image[top : top + 18, left : left + 3] = 20
        image[top + 8 : top + 11, left : left + 9] = 20
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


class AppTarget:
    """POST /v1/predict of serving.app, one image per request (JSON data URL)."""

    def __init__(self, url: str, image: bytes, timeout: float):
        self.url = url.rstrip("/") + "/v1/predict"
        self.body = json.dumps(
            {"image": "data:image/png;base64," + base64.b64encode(image).decode()}
        )
        self.timeout = timeout
        self._local = threading.local()

    def __call__(self) -> None:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        response = self._local.session.post(
            self.url,
            data=self.body,
            headers={"Content-Type": "application/json"},
            timeout=self.timeout,
        )
        if response.status_code != 200:
            try:
                message = response.json().get("error", "")
            except ValueError:
                message = response.text[:200]
            raise RuntimeError(f"HTTP {response.status_code}: {message}")
        if "pred" not in response.json():
            raise RuntimeError("response without 'pred'")


class ServingTarget:
    """TF Serving's predict API through serving.client (REST or gRPC), `batch` images a request."""

    def __init__(
        self, kind: str, url: str, model: str, version, label, images: list, timeout: float
    ):
        # GrpcClient is imported on first use (it loads TensorFlow); REST stays light.
        client_class = client.RestClient if kind == "rest" else client.GrpcClient
        self.client = client_class(url, model, version=version, label=label, timeout=timeout)
        self.images = images

    def __call__(self) -> None:
        self.client.predict(self.images)


def error_kind(error: Exception) -> str:
    status = getattr(error, "status", None)
    if status is not None:  # serving.client.ServingError
        return f"{status}: {getattr(error, 'message', error)}"[:120]
    return f"{type(error).__name__}: {error}"[:120]


def run(target, concurrency: int, duration: float, max_requests: int, warmup: int = 0) -> dict:
    """Drives `target()` from `concurrency` threads; returns the counts and latencies."""
    for _ in range(warmup):
        try:
            target()
        except Exception:  # noqa: BLE001, S110 - warm-up failures show up in the run itself
            pass
    lock = threading.Lock()
    started = 0
    latencies, errors = [], Counter()
    deadline = time.monotonic() + duration

    def worker():
        nonlocal started
        while time.monotonic() < deadline:
            with lock:
                if started >= max_requests:
                    return
                started += 1
            begin = time.perf_counter()
            try:
                target()
            except Exception as e:  # noqa: BLE001 - counted, never fatal
                with lock:
                    errors[error_kind(e)] += 1
                continue
            elapsed = time.perf_counter() - begin
            with lock:
                latencies.append(elapsed)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {"wall_seconds": wall, "latencies": latencies, "errors": errors}


def report(result: dict, concurrency: int, batch_size: int) -> dict:
    latencies = np.array(result["latencies"]) * 1000
    ok, failed = len(latencies), sum(result["errors"].values())
    wall = result["wall_seconds"]
    percentile = (
        (lambda q: round(float(np.percentile(latencies, q)), 2)) if ok else (lambda q: None)
    )
    return {
        "concurrency": concurrency,
        "batch_size": batch_size,
        "requests": ok + failed,
        "ok": ok,
        "errors": failed,
        "error_kinds": dict(result["errors"].most_common()),
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(ok / wall, 2) if wall else 0.0,
        "images_per_second": round(ok * batch_size / wall, 2) if wall else 0.0,
        "latency_ms": {
            "p50": percentile(50),
            "p95": percentile(95),
            "p99": percentile(99),
            "max": round(float(latencies.max()), 2) if ok else None,
        },
    }


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load_test", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--target",
        choices=["app", "rest", "grpc"],
        default="app",
        help="the prediction app, or TF Serving's REST or gRPC API (default: app)",
    )
    parser.add_argument(
        "--url",
        help="app or REST base URL, or gRPC HOST:PORT (default: the "
        "target's usual 127.0.0.1 port: 8000, 8501, 8500)",
    )
    parser.add_argument("--model", default=LINES_MODEL, help="served model (rest, grpc)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="model version (rest, grpc)")
    which.add_argument("--label", help="model version label (rest, grpc)")
    parser.add_argument("--concurrency", "-c", type=int, default=4, help="client threads")
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="seconds (at most)")
    parser.add_argument(
        "--max-requests", "-n", type=int, default=100_000, help="requests (at most)"
    )
    parser.add_argument(
        "--batch-size",
        "-b",
        type=int,
        default=1,
        help="images per request (rest, grpc; the app takes 1)",
    )
    parser.add_argument("--image", type=Path, help="image file to send (default: a drawn line)")
    parser.add_argument("--warmup", type=int, default=2, help="requests sent first, not counted")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.batch_size < 1 or args.max_requests < 1 or args.duration <= 0:
        parser.error("--concurrency, --batch-size, --max-requests and --duration must be positive")
    if args.target == "app" and args.batch_size != 1:
        parser.error(
            "the app reads one image per request: --batch-size must be 1 with --target app"
        )
    if args.target == "app" and (args.version is not None or args.label):
        parser.error("--version/--label are for --target rest or grpc (the app has its own)")
    if args.image is not None and not args.image.is_file():
        parser.error(f"image file not found: {args.image}")
    args.url = (
        args.url
        or {
            "app": "http://127.0.0.1:8000",
            "rest": "http://127.0.0.1:8501",
            "grpc": "127.0.0.1:8500",
        }[args.target]
    )
    return args


def main(argv=None) -> int:
    args = _parse_args(argv)
    image = args.image.read_bytes() if args.image else default_image()
    if args.target == "app":
        target = AppTarget(args.url, image, args.timeout)
    else:
        target = ServingTarget(
            args.target,
            args.url,
            args.model,
            args.version,
            args.label,
            [image] * args.batch_size,
            args.timeout,
        )
    result = report(
        run(target, args.concurrency, args.duration, args.max_requests, args.warmup),
        args.concurrency,
        args.batch_size,
    )
    if args.json:
        print(json.dumps(result))
    else:
        latency = result["latency_ms"]
        print(
            f"target {args.target} {args.url}: {args.concurrency} clients, "
            f"batch {args.batch_size}, {result['wall_seconds']:.1f} s"
        )
        print(f"requests {result['requests']}  ok {result['ok']}  errors {result['errors']}")
        print(
            f"throughput {result['requests_per_second']:.1f} req/s "
            f"({result['images_per_second']:.1f} images/s)"
        )
        print(
            f"latency ms  p50 {latency['p50']}  p95 {latency['p95']}  p99 {latency['p99']}  "
            f"max {latency['max']}"
        )
        for kind, count in result["error_kinds"].items():
            print(f"  {count} x {kind}")
    return 0 if result["ok"] or not result["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
