"""Batching (`--enable_batching`): concurrent Predict calls merged into one model call.

`BatchingOptions` are the BatchingParameters fields implemented here (serving/config/
batching.config); `Batcher` queues checked requests per servable version and signature and runs
them in batches on its own threads. See `Batcher` for how it differs from TF Serving.
"""

import collections
import dataclasses
import logging
import os
import threading
import time

import grpc
import numpy as np

from serving.config_protos import read_batching_parameters
from serving.errors import ServingError

logger = logging.getLogger("serving.local_server")


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """The BatchingParameters fields the local server implements, with TF Serving's defaults
    (those of `--enable_batching` without `--batching_parameters_file`)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)

    # Fields of BatchingParameters that are accepted but have no effect here.
    IGNORED = (
        "allowed_batch_sizes",
        "pad_variable_length_inputs",
        "enable_large_batch_splitting",
        "max_execution_batch_size",
    )

    def __post_init__(self):
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"batching parameter {name} must be at least 1, got {getattr(self, name)}"
                )
        if self.batch_timeout_micros < 0:
            raise ValueError(
                f"batching parameter batch_timeout_micros must not be negative, got "
                f"{self.batch_timeout_micros}"
            )

    @classmethod
    def from_parameters(cls, parameters, source: str = "BatchingParameters") -> "BatchingOptions":
        """From a TF Serving BatchingParameters message; unset fields keep TF Serving's defaults."""
        values = {
            field.name: getattr(parameters, field.name).value
            for field in dataclasses.fields(cls)
            if parameters.HasField(field.name)
        }
        ignored = [field.name for field, _ in parameters.ListFields() if field.name in cls.IGNORED]
        if ignored:
            logger.warning(
                "%s: %s not implemented by the local server; ignored", source, ", ".join(ignored)
            )
        return cls(**values)

    @classmethod
    def from_file(cls, path) -> "BatchingOptions":
        return cls.from_parameters(read_batching_parameters(path), str(path))


def queue_full(batches: int, limit: int) -> ServingError:
    """TF Serving's answer when a batching queue is full: UNAVAILABLE (HTTP 503)."""
    return ServingError(
        grpc.StatusCode.UNAVAILABLE,
        "The batch scheduling queue to which this task was submitted is full; "
        f"currently {batches} batches enqueued and max_enqueued_batches is {limit}",
    )


def _batch_size(arrays: dict) -> int | None:
    """The inputs' common 0th dimension, or None when they have none (scalars, disagreeing or
    empty batches): such requests are not merged with others."""
    sizes = {array.shape[0] if array.ndim else None for array in arrays.values()}
    if len(sizes) != 1:
        return None
    size = sizes.pop()
    return size if size else None


class _Task:
    """One request's inputs waiting in a batch, and then its outputs or error."""

    __slots__ = ("arrays", "done", "error", "outputs", "size")

    def __init__(self, arrays: dict, size: int):
        self.arrays, self.size = arrays, size
        self.done = threading.Event()
        self.outputs: dict | None = None
        self.error: BaseException | None = None


class _Batch:
    __slots__ = ("opened", "size", "tasks")

    def __init__(self):
        self.tasks, self.size, self.opened = [], 0, 0.0

    def add(self, task: _Task) -> None:
        if not self.tasks:
            self.opened = time.monotonic()
        self.tasks.append(task)
        self.size += task.size


class _BatchQueue:
    """The batches waiting for one servable version, signature, output filter and input layout;
    the last batch is the open one."""

    __slots__ = ("batches", "servable", "signature_name", "wanted")

    def __init__(self, servable, signature_name: str, wanted: tuple):
        self.servable, self.signature_name, self.wanted = servable, signature_name, wanted
        self.batches: collections.deque = collections.deque()


class Batcher:
    """Merges concurrent Predict calls into one model call, like TF Serving's `--enable_batching`.

    A request (already checked against its signature) joins the queue of its servable version,
    signature, output filter and input layout (dtype and shape after the batch dimension). The
    queue's last batch is open: a request joins it if the batch stays within `max_batch_size`
    examples; otherwise that batch is closed and a new one opened, unless the queue already
    holds `max_enqueued_batches` batches, in which case the request fails at once with
    UNAVAILABLE (HTTP 503), as in TF Serving. A batch is ready when it is closed, full, or
    `batch_timeout_micros` after its first request arrived; `num_batch_threads` threads run ready
    batches, oldest first: the inputs are concatenated, the model runs once, and each request
    gets its own slice of every output. With a timeout of 0, requests are merged only while all
    batch threads are busy.

    Differences from TF Serving: a request of more than `max_batch_size` examples runs on its
    own, unbatched, in its handler thread (TF Serving refuses it with INVALID_ARGUMENT "Task size
    ... is larger than maximum input batch size" unless large batch splitting is on), as does a
    request whose inputs have no common batch dimension; and if a merged call fails (say one
    request has an unreadable image), its requests are run again one by one, so each gets the
    answer it would have got alone (TF Serving fails the whole batch).
    """

    def __init__(self, options: BatchingOptions, execute):
        self.options = options
        self._execute = execute  # (servable, signature name, arrays, wanted) -> outputs
        self._queues: dict = {}  # key -> _BatchQueue; a queue is removed when its last batch is taken
        self._cond = threading.Condition()
        self._stopped = False
        self._threads: list = []

    def start(self) -> "Batcher":
        for index in range(self.options.num_batch_threads):
            thread = threading.Thread(target=self._work, name=f"batch-thread-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Fails the requests still queued (UNAVAILABLE) and ends the batch threads."""
        with self._cond:
            self._stopped = True
            waiting = [
                task
                for queue in self._queues.values()
                for batch in queue.batches
                for task in batch.tasks
            ]
            self._queues.clear()
            self._cond.notify_all()
        for task in waiting:
            task.error = ServingError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            task.done.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def pending(self) -> int:
        """Requests waiting in a batch that no batch thread has taken yet."""
        with self._cond:
            return sum(
                len(batch.tasks) for queue in self._queues.values() for batch in queue.batches
            )

    def run(self, servable, signature_name: str, arrays: dict, wanted: tuple = ()) -> dict:
        """The request's outputs, computed in a batch with whatever requests join it."""
        size = _batch_size(arrays)
        if size is None or size > self.options.max_batch_size:
            return self._execute(servable, signature_name, arrays, wanted)
        layout = tuple(
            (alias, array.dtype.str, array.shape[1:]) for alias, array in sorted(arrays.items())
        )
        key = (servable, signature_name, tuple(wanted), layout)
        task = _Task(arrays, size)
        with self._cond:
            if self._stopped:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _BatchQueue(servable, signature_name, tuple(wanted))
            if not queue.batches or queue.batches[-1].size + size > self.options.max_batch_size:
                if len(queue.batches) >= self.options.max_enqueued_batches:
                    raise queue_full(len(queue.batches), self.options.max_enqueued_batches)
                queue.batches.append(_Batch())
            queue.batches[-1].add(task)
            self._cond.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        assert task.outputs is not None  # set with `done` when there is no error
        return task.outputs

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    queue, batch, wait = self._take_ready()
                    if batch is not None:
                        break
                    self._cond.wait(wait)
            self._process(queue, batch)

    def _take_ready(self) -> tuple:
        """(queue, batch, None) for the oldest ready batch, taken off its queue; else
        (None, None, seconds until the next batch times out, or None if none is waiting)."""
        now = time.monotonic()
        timeout = self.options.batch_timeout_micros / 1e6
        best, wait = None, None
        for key, queue in self._queues.items():
            batch = queue.batches[0]
            if (
                len(queue.batches) > 1
                or batch.size >= self.options.max_batch_size
                or now >= batch.opened + timeout
            ):
                if best is None or batch.opened < best[2].opened:
                    best = (key, queue, batch)
            else:
                remaining = batch.opened + timeout - now
                wait = remaining if wait is None else min(wait, remaining)
        if best is None:
            return None, None, wait
        key, queue, batch = best
        queue.batches.popleft()
        if not queue.batches:
            del self._queues[key]
        return queue, batch, None

    def _process(self, queue: _BatchQueue, batch: _Batch) -> None:
        tasks = batch.tasks
        try:
            if len(tasks) > 1:
                try:
                    self._run_merged(queue, batch)
                    return
                except Exception as e:
                    logger.debug(
                        "a batch of %d requests failed (%s); running them one by one", len(tasks), e
                    )
            for task in tasks:
                try:
                    task.outputs = self._execute(
                        queue.servable, queue.signature_name, task.arrays, queue.wanted
                    )
                except Exception as e:
                    task.error = e
        finally:
            for task in tasks:
                task.done.set()

    def _run_merged(self, queue: _BatchQueue, batch: _Batch) -> None:
        tasks = batch.tasks
        arrays = {
            alias: np.concatenate([task.arrays[alias] for task in tasks])
            for alias in tasks[0].arrays
        }
        outputs = self._execute(queue.servable, queue.signature_name, arrays, queue.wanted)
        for alias, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != batch.size:
                raise ServingError(
                    grpc.StatusCode.INTERNAL,
                    f"batched output {alias} has shape "
                    f"{list(array.shape)}, not a batch of {batch.size}",
                )
        offset = 0
        for task in tasks:
            task.outputs = {
                alias: array[offset : offset + task.size] for alias, array in outputs.items()
            }
            offset += task.size
