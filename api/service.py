"""The running service: its parts, its start-up order, and whether it is ready.

Start-up opens the index first (taking the data directory's single-writer lock and
recovering from any crash), so a second server on the same directory fails at once.
Models load in a background thread: ``/healthz`` answers immediately, ``/readyz`` and
the query endpoints wait for the warm-up, and uploads are accepted (queued) before it.
Job workers start only after warm-up, once jobs a dead process left behind are re-queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.auth import KeyRing
from api.limits import RateLimiter
from api.metrics import ApiMetrics
from ingest.jobs import Job, JobQueue
from ingest.runtime import Runtime
from rag.errors import NotFound, NotReady, RagError
from rag.logs import log_event
from rag.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from rag.answering import QueryPipeline

log = logging.getLogger(__name__)


class Service:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.keyring = KeyRing.from_settings(settings)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.metrics = ApiMetrics(registry)
        self.runtime = Runtime(settings, writer=True, registry=self.metrics.registry)
        self.jobs = JobQueue(settings, self._ingest)
        self.jobs.on_finished = self._job_finished
        self.metrics.watch_jobs(self.jobs.store.counts)
        self.ready = threading.Event()
        self.warm_error: RagError | None = None
        self.started_at = time.time()
        self.seeded: list[Job] = []
        self._warm_thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Open the index and begin warming up; a second call does nothing."""
        if self._warm_thread is not None:
            return
        self.runtime.index  # noqa: B018 - opens the index: lock, recovery
        self._clean_uploads()
        self._warm_thread = threading.Thread(target=self._warm, name="warm-up", daemon=True)
        self._warm_thread.start()

    async def close_gateway(self) -> None:
        """The gateway's HTTP clients belong to the serving event loop: close them on it."""
        gateway = self.runtime.__dict__.get("gateway")
        if gateway is not None:
            try:
                await gateway.aclose()
            except Exception:  # shutting down: nothing useful to do
                log.debug("closing the gateway failed", exc_info=True)

    def stop(self) -> None:
        self.jobs.stop()
        self.runtime.close()
        self.jobs.store.close()

    def _warm(self) -> None:
        """Ingestion parts first (then the workers start), query parts second; either may fail alone."""
        started = time.perf_counter()
        if self._load(
            "ingestion", lambda: (self.runtime.ingestion, self.runtime.embedder.embed_query("warm up"))
        ):
            self.jobs.start()
            if self.settings.samples_dir is not None:
                from api.samples import seed_samples

                try:
                    self.seeded = seed_samples(self)
                except RagError as exc:
                    log_event(log, "samples not loaded", logging.WARNING, code=exc.code, reason=exc.message)
        if self._load("query", lambda: self.runtime.query) and self.jobs.alive:
            self.ready.set()
            log_event(log, "service ready", seconds=round(time.perf_counter() - started, 2))

    def _load(self, what: str, load: Callable[[], object]) -> bool:
        try:
            load()
            return True
        except RagError as exc:
            self.warm_error = exc
        except Exception as exc:  # report it on /readyz instead of dying silently
            log.exception("loading the %s parts failed", what)
            self.warm_error = RagError(f"loading the {what} parts failed: {exc.__class__.__name__}")
        log_event(
            log,
            "service not ready",
            logging.ERROR,
            part=what,
            code=self.warm_error.code,
            reason=self.warm_error.message,
        )
        return False

    def _clean_uploads(self) -> None:
        """Files of jobs that no longer need them, and partial uploads a crash left behind."""
        directory = self.settings.uploads_dir
        if not directory.exists():
            return
        keep = {
            Path(j.path).name
            for state in ("queued", "running")
            for j in self.jobs.store.recent(state=state, limit=1_000_000)
        }
        for path in directory.iterdir():
            if path.is_file() and path.name not in keep:
                path.unlink(missing_ok=True)

    # --- parts ------------------------------------------------------------------

    async def query_pipeline(self) -> QueryPipeline:
        """The query pipeline once warm-up is done; 503 ``not_ready`` if it does not finish in time."""
        deadline = time.monotonic() + min(self.settings.query_deadline_s, 30.0)
        while not self.ready.is_set():
            if self.warm_error is not None:
                raise self.warm_error
            if time.monotonic() > deadline:
                raise NotReady("The service is still loading its models", retry_after=5)
            await asyncio.sleep(0.1)
        return self.runtime.query

    def _ingest(self, job: Job, progress: Any) -> dict[str, Any]:
        path = Path(job.path)
        if not path.exists():
            raise NotFound("the uploaded file is no longer on disk")
        result = self.runtime.ingestion.ingest_file(
            path,
            name=job.name,
            collection=job.collection,
            metadata=job.metadata,
            progress=lambda p: progress(asdict(p)),
        )
        return {
            "document_id": result.document.id,
            "duplicate": result.duplicate,
            "pages": result.pages,
            "ocr_pages": result.ocr_pages,
            "chunks": result.chunks,
            "seconds": round(result.seconds, 3),
            "timings": result.timings,
        }

    def _job_finished(self, job: Job, state: str, seconds: float) -> None:
        self.metrics.jobs_finished.labels("retried" if state == "queued" else state).inc()
        self.metrics.job_seconds.observe(seconds)


__all__ = ["Service"]
