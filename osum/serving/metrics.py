"""Prometheus metrics of one server: requests, latency, batch sizes, queue depth, audio served.

Each app gets its own registry (no process-global state), so two servers in one process, as in the tests, count
apart. ``GET /metrics`` returns :meth:`Metrics.render`.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    """The server's counters; ``queue_depth`` is read when scraped."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "osum_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "osum_request_seconds",
            "Time to answer a request",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "osum_batch_requests",
            "Requests decoded together in one model batch",
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_queries = Histogram(
            "osum_batch_queries",
            "Queries (clip x task) decoded together in one model batch",
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.audio_seconds = Counter(
            "osum_audio_seconds", "Seconds of audio received in accepted requests", registry=r
        )
        self.rejected = Counter(
            "osum_rejected_requests", "Requests refused by the model queue", ["reason"], registry=r
        )
        gauge = Gauge("osum_queue_depth", "Requests waiting for the model worker", registry=r)
        gauge.set_function(queue_depth)

    def observe_batch(self, jobs: int, queries: int) -> None:
        self.batch_requests.observe(jobs)
        self.batch_queries.observe(queries)

    def render(self) -> bytes:
        return generate_latest(self.registry)
