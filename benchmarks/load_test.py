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

Two measurements for issue-style questions about the server rather than the client:

- `--rss-pid PID` (the server's process, on this machine): its resident memory before the run
  and its peak during it (VmHWM, reset first through /proc/PID/clear_refs when allowed), e.g.
  with `--image-size 4096x4096` for the peak memory of requests at the pixel limit.
- `--swap-dir DIR` (the served model's base path, e.g. artifacts/serving/lines): after
  `--swap-after` seconds, pushes a copy of the newest version as the next version (copy beside,
  then rename, as a deployment should) and reports the latency of the requests started while it
  was loaded and swapped in (until `--swap-window` seconds after it became AVAILABLE) against
  the steady state before the push: p50/p99 and their ratios.
"""

import argparse
import base64
import contextlib
import io
import json
import shutil
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
        with contextlib.suppress(Exception):
            target()
    lock = threading.Lock()
    started = 0
    latencies: list[float] = []
    starts: list[float] = []
    errors: Counter = Counter()
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
            except Exception as e:
                with lock:
                    errors[error_kind(e)] += 1
                continue
            elapsed = time.perf_counter() - begin
            with lock:
                latencies.append(elapsed)
                starts.append(begin)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {"wall_seconds": wall, "latencies": latencies, "starts": starts, "errors": errors}


def _proc_status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Resets the process's peak resident memory (VmHWM) to its current RSS, if allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb(pid: int) -> dict:
    """{"rss": current, "peak": VmHWM} of a process, in MB."""
    return {
        name: round(kb / 1024, 1) if kb is not None else None
        for name, kb in (
            ("rss", _proc_status_kb(pid, "VmRSS")),
            ("peak", _proc_status_kb(pid, "VmHWM")),
        )
    }


class Swap:
    """Pushes the next version of a model (a copy of its newest) at a given time and records
    when it was pushed and when it became AVAILABLE (`available_versions()` -> set)."""

    def __init__(self, base: Path, after: float, available_versions):
        self.base, self.after, self.available_versions = base, after, available_versions
        self.pushed: float | None = None
        self.available: float | None = None
        self.version: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        time.sleep(self.after)
        versions = sorted(int(p.name) for p in self.base.iterdir() if p.name.isdigit())
        self.version = versions[-1] + 1
        staging = self.base / f".incoming-{self.version}"
        shutil.copytree(self.base / str(versions[-1]), staging)
        self.pushed = time.perf_counter()
        staging.rename(self.base / str(self.version))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if self.version in self.available_versions():
                    self.available = time.perf_counter()
                    return
            except Exception:
                pass
            time.sleep(0.05)


def swap_report(result: dict, swap: Swap, window: float) -> dict:
    """Latency of requests started while the new version was loaded and swapped in (until
    `window` s after it was AVAILABLE) against those started before the push."""
    if swap.pushed is None:
        return {"error": "the run ended before the swap"}
    end = (swap.available or float("inf")) + window
    pairs = list(zip(result["starts"], result["latencies"]))
    steady = np.array([latency for start, latency in pairs if start < swap.pushed]) * 1000
    during = np.array([latency for start, latency in pairs if swap.pushed <= start < end]) * 1000

    def figures(values) -> dict:
        if not len(values):
            return {"requests": 0}
        return {
            "requests": len(values),
            "p50": round(float(np.percentile(values, 50)), 2),
            "p99": round(float(np.percentile(values, 99)), 2),
            "max": round(float(values.max()), 2),
        }

    steady_figures, during_figures = figures(steady), figures(during)
    ratios = {
        f"{q}_ratio": round(during_figures[q] / steady_figures[q], 2)
        for q in ("p50", "p99")
        if q in during_figures and q in steady_figures
    }
    return {
        "version": swap.version,
        "load_seconds": round(swap.available - swap.pushed, 2) if swap.available else None,
        "steady": steady_figures,
        "during_swap": during_figures,
        **ratios,
    }


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
    parser.add_argument(
        "--image-size",
        metavar="WxH",
        help="send a drawn line of this size instead (e.g. 4096x4096)",
    )
    parser.add_argument(
        "--rss-pid", type=int, help="report this process's RSS before and peak during the run"
    )
    parser.add_argument(
        "--swap-dir",
        type=Path,
        help="the served model's base path: push its next version during the run",
    )
    parser.add_argument(
        "--swap-after", type=float, default=5.0, help="seconds into the run to push it (5)"
    )
    parser.add_argument(
        "--swap-window",
        type=float,
        default=1.0,
        help="seconds after it is AVAILABLE still counted as during the swap (1)",
    )
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
    if args.image_size:
        try:
            args.image_size = tuple(int(n) for n in args.image_size.lower().split("x"))
            assert len(args.image_size) == 2 and min(args.image_size) > 0
        except (ValueError, AssertionError):
            parser.error(f"--image-size: expected WxH, got {args.image_size!r}")
    if args.swap_dir is not None and (args.target == "app" or not args.swap_dir.is_dir()):
        parser.error("--swap-dir needs --target rest or grpc and an existing model directory")
    args.url = (
        args.url
        or {
            "app": "http://127.0.0.1:8000",
            "rest": "http://127.0.0.1:8501",
            "grpc": "127.0.0.1:8500",
        }[args.target]
    )
    return args


def _available(args) -> set:
    """The served model's AVAILABLE versions, asked over the target's own API."""
    if args.target == "grpc":
        with client.GrpcClient(args.url, args.model, timeout=5) as status_client:
            return {s["version"] for s in status_client.status() if s["state"] == "AVAILABLE"}
    answer = requests.get(f"{args.url.rstrip('/')}/v1/models/{args.model}", timeout=5).json()
    return {int(s["version"]) for s in answer["model_version_status"] if s["state"] == "AVAILABLE"}


def main(argv=None) -> int:
    args = _parse_args(argv)
    image = (
        args.image.read_bytes()
        if args.image
        else default_image(*args.image_size)
        if args.image_size
        else default_image()
    )
    target: AppTarget | ServingTarget
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
    swap = None
    if args.swap_dir is not None:
        swap = Swap(args.swap_dir, args.swap_after, lambda: _available(args))
    if args.rss_pid:
        reset_peak_rss(args.rss_pid)
        rss_before = rss_mb(args.rss_pid)
    if swap:
        swap.thread.start()
    raw = run(target, args.concurrency, args.duration, args.max_requests, args.warmup)
    result = report(raw, args.concurrency, args.batch_size)
    if args.rss_pid:
        result["server_rss_mb"] = {"before": rss_before["rss"], **rss_mb(args.rss_pid)}
    if swap:
        swap.thread.join(timeout=1)
        result["swap"] = swap_report(raw, swap, args.swap_window)
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
        for key in ("server_rss_mb", "swap"):
            if key in result:
                print(f"{key.replace('_', ' ')}: {json.dumps(result[key])}")
    return 0 if result["ok"] or not result["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
