"""Prometheus metrics of the HTTP service, on a registry the app is given (tests get their own)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class _JobStates(Collector):
    """Reads the queue at scrape time, so the gauge is right after a restart too."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("rag_ingest_jobs", "Ingestion jobs by state", labels=["state"])
        for state, n in self.counts().items():
            family.add_metric([state], n)
        yield family


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rag_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds",
            "Time to the end of the response",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("rag_http_requests_in_flight", "Requests being handled", registry=r)
        self.errors = Counter("rag_http_errors", "Problem responses by code", ["code"], registry=r)
        self.jobs_finished = Counter(
            "rag_ingest_jobs_finished", "Finished ingestion jobs", ["state"], registry=r
        )
        self.job_seconds = Histogram(
            "rag_ingest_job_duration_seconds",
            "Run time of an ingestion job",
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.answers = Counter("rag_answers", "Answers given", ["abstained", "cached", "stream"], registry=r)
        self.uploads = Counter("rag_uploads", "Uploaded files by outcome", ["outcome"], registry=r)
        self.answers_stored = Counter(
            "rag_answers_stored", "Answers stored, by the surface that asked", ["surface"], registry=r
        )
        self.feedback = Counter("rag_answer_feedback", "Feedback on answers", ["rating"], registry=r)
        with contextlib.suppress(ValueError):  # already registered on a shared registry
            ProcessCollector(registry=r)

    def watch_jobs(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_JobStates(counts))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["ApiMetrics"]
