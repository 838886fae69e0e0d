"""The model worker: one thread owns the model and decodes the queries of concurrent requests together.

Requests put a :class:`Job` (one or more queries about one clip) into a bounded queue. The worker takes the first
job, waits up to ``max_wait`` for more until it holds ``max_batch_size`` queries, and answers them all in one call
of :meth:`osum.Osum.answer`. Because a padded batch gives the same answers as one clip at a time, batching changes
the speed, never the answers.

This is tricky because three things can go wrong at once, and none may take the server down:

- the queue is full: :meth:`BatchWorker.submit` raises :class:`QueueFull` at once (the server answers 429);
- a request gives up (time limit or client gone): its future is cancelled; a job cancelled before the worker
  reaches it is skipped, so an overloaded server does not spend its time on answers nobody waits for;
- one query makes decoding fail: the batch is retried job by job, so only the job at fault gets the error.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from osum.api import Osum, Query
from osum.errors import OsumError
from osum.inference.decoding import DecodingOptions
from osum.tasks import TaskResult

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The worker's queue holds ``max_queue`` jobs already."""


@dataclass
class Job:
    """Queries answered together for one request; ``future`` gets their results in order."""

    queries: Sequence[Query]
    language: str | None = None
    max_new_tokens: int | None = None  # None = the worker's default
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


BatchObserver = Callable[[int, int], None]  # (jobs in the batch, queries in the batch)


class BatchWorker:
    """Decodes queued jobs in batches on one thread. ``start()`` before ``submit()``, ``stop()`` at shutdown."""

    def __init__(
        self,
        model: Osum,
        options: DecodingOptions,
        *,
        max_batch_size: int = 8,
        max_wait: float = 0.02,
        max_queue: int = 64,
        on_batch: BatchObserver | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError(
                f"need max_batch_size >= 1, max_queue >= 1, max_wait >= 0; got {max_batch_size}, {max_queue}, "
                f"{max_wait}"
            )
        self.model = model
        self.options = replace(options, batch_size=max_batch_size)
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self._on_batch = on_batch
        self.batch_seconds = 1.0  # moving average of the time one batch takes (for Retry-After)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="osum-model-worker", daemon=True)

    @property
    def depth(self) -> int:
        """Jobs waiting in the queue (not counting the batch being decoded)."""
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in progress, fail the jobs still queued, and end the thread."""
        self._stop.set()
        self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    def submit(self, job: Job) -> Future:
        """Queue ``job`` -> its future (a list of :class:`TaskResult`). Raises :class:`QueueFull` when full."""
        if self._stop.is_set():
            raise RuntimeError("the model worker has stopped")
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"the queue holds {self._queue.maxsize} requests already") from None
        return job.future

    # ------------------------------------------------------------------------------------------ worker thread

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            jobs = [first]
            size = len(first.queries)
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                jobs.append(job)
                size += len(job.queries)
            # Jobs whose requests gave up while queued are dropped here; the rest are marked running.
            live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if live:
                tic = time.monotonic()
                self._run(live)
                self.batch_seconds = 0.7 * self.batch_seconds + 0.3 * (time.monotonic() - tic)

    def _run(self, jobs: list[Job]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(jobs), sum(len(j.queries) for j in jobs))
        if len(jobs) == 1:
            self._run_alone(jobs[0])
            return
        try:
            results = self._answer(jobs)
        except Exception:
            # Retry alone, so that only the job that breaks decoding gets the error.
            for job in jobs:
                self._run_alone(job)
            return
        for job, answer in zip(jobs, results, strict=True):
            job.future.set_result(answer)

    def _run_alone(self, job: Job) -> None:
        try:
            (answer,) = self._answer([job])
        except OsumError as exc:  # bad input that got this far (a prompt the model cannot take, ...)
            job.future.set_exception(exc)
        except Exception as exc:
            log.exception("decoding failed for one request")
            job.future.set_exception(exc)
        else:
            job.future.set_result(answer)

    def _answer(self, jobs: list[Job]) -> list[list[TaskResult]]:
        """One ``Osum.answer`` call per (language, max_new_tokens) group -> each job's results, in job order."""
        out: list[list[TaskResult] | None] = [None] * len(jobs)

        def key(i: int) -> tuple[str, int]:
            return (jobs[i].language or "", jobs[i].max_new_tokens or self.options.max_new_tokens)

        for (language, max_new), group in itertools.groupby(sorted(range(len(jobs)), key=key), key=key):
            members = list(group)
            queries = [q for i in members for q in jobs[i].queries]
            options = replace(self.options, max_new_tokens=max_new)
            answers = iter(self.model.answer(queries, options, language=language or None))
            for i in members:
                out[i] = [next(answers) for _ in jobs[i].queries]
        return [r for r in out if r is not None]
