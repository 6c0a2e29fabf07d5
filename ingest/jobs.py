"""A durable ingestion queue on the embedded database, worked by a few threads.

A job accepted with 202 must never be lost: it is a row in SQLite before the client
hears about it, a worker claims it in a transaction, and a process that dies mid-job
leaves it ``running`` with no live owner. The process that next holds the data
directory's writer lock re-queues such jobs at start-up, so the work is retried; the
index's content-derived ids and its version switch make a retry land exactly once.
A job the process died during is retried once (``CRASH_ATTEMPTS``): a document that kills
the service would otherwise do it again at each restart. A document that fails on its own
merits (``DocumentError``, ``resource_limit`` among them) is never retried.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.blobs import BlobStore, open_blob_store
from rag.db import (
    DATABASE_ERRORS,
    Connection,
    Database,
    Migration,
    Row,
    Store,
    add_missing_columns,
    create_tables,
    equal_to,
    open_database,
)
from rag.errors import ConfigurationError, JobCancelled, NotFound, QueueFull, RagError
from rag.logs import log_event
from rag.settings import Settings

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    collection TEXT NOT NULL,
    document_id TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_token TEXT,
    not_before REAL NOT NULL DEFAULT 0,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error_code TEXT,
    error_message TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL,
    content_sha256 TEXT,
    kind TEXT,
    size_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, not_before, seq);
CREATE INDEX IF NOT EXISTS jobs_by_document ON jobs(document_id, state);
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs(tenant, seq);
"""

_ADDED_COLUMNS = (("content_sha256", "TEXT"), ("kind", "TEXT"), ("size_bytes", "INTEGER"))
"""Columns a jobs table made by an earlier version lacks (intake's facts): migration 2."""
_LEASE_COLUMNS = (
    ("worker", "TEXT"),
    ("lease_expires", "REAL"),
    ("cancel_requested", "INTEGER NOT NULL DEFAULT 0"),
)
"""Migration 3: who runs a job and until when its lease holds (workers heartbeat it), and a
cancel any process can ask for."""
DEFAULT_LEASE_S = 30.0
BLOB_PREFIX = "blob:"
"""A job's ``path`` that names a key of the shared blob store instead of a local file."""

DEFAULT_MAX_ATTEMPTS = 3
"""Attempts of a job whose failures are worth retrying (a dependency's 5xx)."""
CRASH_ATTEMPTS = 2
"""Attempts of a job the process died during: the first and one retry."""
_PROGRESS_EVERY_S = 0.25
_POLL_S = 0.5


@dataclass
class JobSpec:
    """What intake hands to the queue: a file already on disk, where it goes, and what intake
    established about it (``ingest.intake.Admission``), so the worker does not establish it again."""

    tenant: str
    collection: str
    document_id: str
    name: str
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    content_sha256: str | None = None
    kind: str | None = None
    size_bytes: int | None = None


@dataclass
class Job:
    id: str
    tenant: str
    collection: str
    document_id: str
    name: str
    path: str
    metadata: dict[str, Any]
    state: str
    attempts: int
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    run_token: str | None = None
    content_sha256: str | None = None
    kind: str | None = None
    size_bytes: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state in (SUCCEEDED, FAILED)


def _queued_for(conn: Connection, tenant: str) -> tuple[int, int]:
    """The tenant's queued jobs and their bytes: what its queue limits count."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM jobs WHERE state = ? AND tenant = ?",
        (QUEUED, tenant),
    ).fetchone()
    return int(row[0]), int(row[1])


def _too_many_queued(queued: int, limit: int, retry_after: float) -> QueueFull:
    return QueueFull(
        f"{queued} of your documents are waiting to be ingested (limit {limit}); try again later",
        retry_after=retry_after,
    )


def _row_to_job(row: Row) -> Job:
    return Job(
        id=row["id"],
        tenant=row["tenant"],
        collection=row["collection"],
        document_id=row["document_id"],
        name=row["name"],
        path=row["path"],
        metadata=json.loads(row["metadata"]),
        state=row["state"],
        attempts=row["attempts"],
        progress=json.loads(row["progress"]),
        result=json.loads(row["result"]) if row["result"] else None,
        error_code=row["error_code"],
        error_message=row["error_message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        updated_at=row["updated_at"],
        run_token=row["run_token"],
        content_sha256=row["content_sha256"],
        kind=row["kind"],
        size_bytes=row["size_bytes"],
    )


class JobStore(Store):
    """The jobs table; every state change is one transaction. Thread-safe within a process."""

    migrations = (
        Migration(1, "jobs", create_tables(_SCHEMA)),
        Migration(2, "intake's facts on each job", add_missing_columns("jobs", _ADDED_COLUMNS)),
        Migration(3, "worker leases and cancel requests", add_missing_columns("jobs", _LEASE_COLUMNS)),
    )

    def __init__(
        self,
        source: Path | Database,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base_s: float = 2.0,
        lease_s: float = DEFAULT_LEASE_S,
        migrate_now: bool = True,
    ) -> None:
        """A failed attempt waits ``backoff_base_s * 2**(attempt-1)`` (at most 30 s) before the next.
        A claimed job is its worker's for ``lease_s``, renewed by heartbeats; past it, any worker
        may take it again (``reclaim_expired``)."""
        super().__init__(source, migrate_now=migrate_now)
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s

    # --- reads ------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self.read() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def recent(self, tenant: str | None = None, state: str | None = None, limit: int = 100) -> list[Job]:
        where, args = equal_to(tenant=tenant, state=state)
        with self.read() as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE 1=1{where} ORDER BY seq DESC LIMIT ?", [*args, limit]
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def pending_for_document(self, document_id: str) -> Job | None:
        """The queued or running job that will produce this document, if any."""
        with self.read() as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE document_id = ? AND state IN (?, ?) ORDER BY seq LIMIT 1",
                (document_id, QUEUED, RUNNING),
            ).fetchone()
        return _row_to_job(row) if row else None

    def latest_for_document(self, document_id: str) -> Job | None:
        with self.read() as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE document_id = ? ORDER BY seq DESC LIMIT 1", (document_id,)
            ).fetchone()
        return _row_to_job(row) if row else None

    def pending(self, collection: str) -> list[Job]:
        with self.read() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE collection = ? AND state IN (?, ?) ORDER BY seq",
                (collection, QUEUED, RUNNING),
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self.read() as conn:
            rows = conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        found = {r[0]: int(r[1]) for r in rows}
        return {s: found.get(s, 0) for s in STATES}

    def queued_for(self, tenant: str) -> tuple[int, int]:
        """The tenant's queued jobs and their bytes."""
        with self.read() as conn:
            return _queued_for(conn, tenant)

    def any_for_collection(self, collection: str) -> bool:
        with self.read() as conn:
            row = conn.execute("SELECT 1 FROM jobs WHERE collection = ? LIMIT 1", (collection,)).fetchone()
        return row is not None

    def mean_run_seconds(self, recent: int = 20) -> float | None:
        with self.read() as conn:
            row = conn.execute(
                "SELECT AVG(finished_at - started_at) FROM (SELECT finished_at, started_at FROM jobs"
                " WHERE state = ? AND started_at IS NOT NULL ORDER BY seq DESC LIMIT ?) AS recent_jobs",
                (SUCCEEDED, recent),
            ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # --- writes -----------------------------------------------------------------

    def submit(
        self, specs: list[JobSpec], max_depth: int, workers: int = 1, max_bytes: int | None = None
    ) -> list[tuple[Job, bool]]:
        """Queue ``specs`` all at once or not at all; ``(job, created)`` per spec.

        A document that already has a queued or running job gets that job back (no second
        job for the same content); past ``max_depth`` queued jobs or ``max_bytes`` queued bytes
        *of the uploading tenant*, ``QueueFull`` (one tenant's backlog never fills another's
        queue, and its 429 counts only the tenant's own jobs).
        """
        now = time.time()
        out: list[tuple[str, bool]] = []
        tenants = {spec.tenant for spec in specs}
        with self.transaction() as conn:
            held = [_queued_for(conn, tenant) for tenant in tenants]
            queued = max((count for count, _ in held), default=0)
            queued_bytes = max((size for _, size in held), default=0)
            fresh: dict[str, str] = {}
            for spec in specs:
                row = conn.execute(
                    "SELECT id FROM jobs WHERE document_id = ? AND state IN (?, ?) ORDER BY seq LIMIT 1",
                    (spec.document_id, QUEUED, RUNNING),
                ).fetchone()
                if row is not None:
                    out.append((row["id"], False))
                    continue
                if spec.document_id in fresh:
                    out.append((fresh[spec.document_id], False))
                    continue
                if queued + len(fresh) + 1 > max_depth:
                    raise _too_many_queued(queued, max_depth, self._retry_after(queued, workers))
                queued_bytes += spec.size_bytes or 0
                if max_bytes is not None and queued_bytes > max_bytes:
                    raise QueueFull(
                        f"your documents waiting to be ingested would come to {queued_bytes:,} bytes"
                        f" (limit {max_bytes:,}); try again later",
                        retry_after=self._retry_after(queued + len(fresh), workers),
                    )
                job_id = uuid.uuid4().hex
                conn.execute(
                    "INSERT INTO jobs (id, tenant, collection, document_id, name, path, metadata, state,"
                    " created_at, updated_at, progress, content_sha256, kind, size_bytes)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        job_id,
                        spec.tenant,
                        spec.collection,
                        spec.document_id,
                        spec.name,
                        str(spec.path),
                        json.dumps(spec.metadata, sort_keys=True),
                        QUEUED,
                        now,
                        now,
                        json.dumps({"stage": QUEUED}),
                        spec.content_sha256,
                        spec.kind,
                        spec.size_bytes,
                    ),
                )
                fresh[spec.document_id] = job_id
                out.append((job_id, True))
        jobs = []
        for job_id, created in out:
            job = self.get(job_id)
            if job is not None:
                jobs.append((job, created))
        return jobs

    def _retry_after(self, queued: int, workers: int) -> float:
        per_job = self.mean_run_seconds() or 5.0
        return float(min(300, max(1, round(per_job * max(1, queued // 10) / max(1, workers)))))

    def claim(self, worker: str = "") -> Job | None:
        """Take the oldest runnable queued job for ``worker``; ``None`` when there is none.

        On PostgreSQL workers on any machine claim at once: each locks the row it takes and
        skips rows others hold (``FOR UPDATE ... SKIP LOCKED``) instead of queueing on one lock.
        """
        now = time.time()
        token = secrets.token_hex(8)
        postgres = self.db.dialect == "postgresql"
        with self.transaction(exclusive=not postgres) as conn:
            # round robin across tenants: the tenant whose last job started longest ago (or never)
            # goes first, so a backlog delays another tenant's first document by one job at most
            row = conn.execute(
                "SELECT q.id FROM jobs q LEFT JOIN (SELECT tenant, MAX(started_at) AS last FROM jobs"
                " WHERE started_at IS NOT NULL GROUP BY tenant) t ON t.tenant = q.tenant"
                " WHERE q.state = ? AND q.not_before <= ? ORDER BY COALESCE(t.last, 0), q.seq LIMIT 1"
                + (" FOR UPDATE OF q SKIP LOCKED" if postgres else ""),
                (QUEUED, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, run_token = ?, started_at = ?,"
                " updated_at = ?, error_code = NULL, error_message = NULL, worker = ?, lease_expires = ?,"
                " cancel_requested = 0 WHERE id = ?",
                (RUNNING, token, now, now, worker, now + self.lease_s, row["id"]),
            )
        return self.get(row["id"])

    def heartbeat(self, jobs: Sequence[Job]) -> set[str]:
        """Renew the leases of ``jobs`` (this worker's); the ids of those someone asked to cancel
        or that are no longer this worker's (reclaimed after a missed lease)."""
        stop: set[str] = set()
        if not jobs:
            return stop
        expires = time.time() + self.lease_s
        with self.transaction(exclusive=False) as conn:
            for job in jobs:
                row = conn.execute(
                    "UPDATE jobs SET lease_expires = ? WHERE id = ? AND run_token = ? AND state = ?"
                    " RETURNING cancel_requested",
                    (expires, job.id, job.run_token, RUNNING),
                ).fetchone()
                if row is None or row[0]:
                    stop.add(job.id)
        return stop

    def request_cancel(self, job_id: str) -> bool:
        """Ask whichever worker runs ``job_id`` to stop it (at its next heartbeat or progress report)."""
        with self.transaction() as conn:
            return bool(
                conn.execute(
                    "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = ?", (job_id, RUNNING)
                ).rowcount
            )

    def reclaim_expired(self) -> dict[str, int]:
        """Jobs whose worker stopped heartbeating (it died, or lost its machine): queued again
        while crash attempts remain (``CRASH_ATTEMPTS``), else failed; safe from any process."""
        return self._requeue_running(
            " AND lease_expires < ?", "the worker running the job stopped, and again during its retry"
        )

    def report_progress(self, job: Job, progress: dict[str, Any]) -> bool:
        """Record progress (renewing the lease); ``True`` when the job should stop (cancelled, or
        no longer this worker's)."""
        now = time.time()
        with self.transaction(exclusive=False) as conn:
            row = conn.execute(
                "UPDATE jobs SET progress = ?, updated_at = ?, lease_expires = ?"
                " WHERE id = ? AND run_token = ? AND state = ? RETURNING cancel_requested",
                (json.dumps(progress), now, now + self.lease_s, job.id, job.run_token, RUNNING),
            ).fetchone()
        return row is None or bool(row[0])

    def succeed(self, job: Job, result: dict[str, Any], progress: dict[str, Any]) -> bool:
        now = time.time()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = ?, result = ?, progress = ?, finished_at = ?, updated_at = ?"
                " WHERE id = ? AND run_token = ? AND state = ?",
                (
                    SUCCEEDED,
                    json.dumps(result, default=str),
                    json.dumps(progress),
                    now,
                    now,
                    job.id,
                    job.run_token,
                    RUNNING,
                ),
            )
        return cur.rowcount == 1

    def fail(self, job: Job, code: str, message: str, *, retry: bool, progress: dict[str, Any]) -> str:
        """Record a failed attempt; re-queue it with back-off while attempts remain. Returns the new state."""
        now = time.time()
        again = retry and job.attempts < self.max_attempts
        state = QUEUED if again else FAILED
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, progress = ?, not_before = ?,"
                " finished_at = ?, updated_at = ? WHERE id = ? AND run_token = ? AND state = ?",
                (
                    state,
                    code,
                    message,
                    json.dumps(progress),
                    now + min(30.0, self.backoff_base_s * 2.0 ** (job.attempts - 1)) if again else 0,
                    None if again else now,
                    now,
                    job.id,
                    job.run_token,
                    RUNNING,
                ),
            )
        return state

    def release(self, job: Job) -> None:
        """Give a job back after a clean shutdown interrupted it; the attempt does not count."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, run_token = NULL, updated_at = ?"
                " WHERE id = ? AND run_token = ? AND state = ?",
                (QUEUED, time.time(), job.id, job.run_token, RUNNING),
            )

    def cancel_queued_job(self, job_id: str) -> bool:
        """Fail one queued job as cancelled; ``False`` when it is not queued (any more)."""
        now = time.time()
        with self.transaction() as conn:
            changed = conn.execute(
                "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, finished_at = ?,"
                " updated_at = ? WHERE id = ? AND state = ?",
                (FAILED, JobCancelled.code, "the job was cancelled before it ran", now, now, job_id, QUEUED),
            ).rowcount
        return bool(changed)

    def cancel_queued(self, document_id: str) -> list[Job]:
        """Fail the queued jobs of a deleted document so they do not bring it back."""
        now = time.time()
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE document_id = ? AND state = ?", (document_id, QUEUED)
            ).fetchall()
            conn.execute(
                "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, finished_at = ?,"
                " updated_at = ? WHERE document_id = ? AND state = ?",
                (
                    FAILED,
                    JobCancelled.code,
                    "the document was deleted before it was ingested",
                    now,
                    now,
                    document_id,
                    QUEUED,
                ),
            )
        return [_row_to_job(r) for r in rows]

    def recover(self) -> dict[str, int]:
        """Re-queue jobs a dead process left ``running`` once (``CRASH_ATTEMPTS``); fail them after
        a second death. Only call while holding the writer lock."""
        return self._requeue_running("", "the service stopped during the job and again during its retry")

    def _requeue_running(self, lease_condition: str, exhausted_message: str) -> dict[str, int]:
        """Running jobs (those whose lease ran out, with ``lease_condition``) back to the queue while
        crash attempts remain, the others failed as ``interrupted``."""
        now = time.time()
        attempts = min(self.max_attempts, CRASH_ATTEMPTS)
        lease_args = (now,) if lease_condition else ()
        with self.transaction() as conn:
            requeued = conn.execute(
                "UPDATE jobs SET state = ?, run_token = NULL, worker = NULL, updated_at = ?, progress = ?"
                " WHERE state = ? AND attempts < ?" + lease_condition,
                (QUEUED, now, json.dumps({"stage": QUEUED}), RUNNING, attempts, *lease_args),
            ).rowcount
            exhausted = conn.execute(
                "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, finished_at = ?,"
                " updated_at = ? WHERE state = ?" + lease_condition,
                (FAILED, "interrupted", exhausted_message, now, now, RUNNING, *lease_args),
            ).rowcount
        return {"requeued": requeued, "failed": exhausted}


Handler = Callable[[Job, Callable[[dict[str, Any]], None]], dict[str, Any]]
"""Runs one job: gets the job and a progress callback, returns the result to store."""


class JobQueue:
    """The store plus ``settings.workers`` threads that run ``handler`` on claimed jobs."""

    def __init__(self, settings: Settings, handler: Handler, *, store: JobStore | None = None) -> None:
        self.settings = settings
        self.handler = handler
        self.store = store or JobStore(
            open_database("jobs", url=settings.database_url, data_dir=settings.data_dir),
            lease_s=settings.job_lease_s,
            migrate_now=settings.migrate_on_start,
        )
        self.shared = settings.database_url is not None
        """Other processes run jobs from the same queue: leases, not start-up, recover theirs."""
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.blobs: BlobStore | None = (
            open_blob_store(settings.blob_url, settings.data_dir / "blobs", settings.s3_endpoint_url)
            if settings.blob_url
            else None
        )
        """Set (``RAG_BLOB_URL``): uploads wait for a worker in the store every process shares."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, Job] = {}
        self._running_lock = threading.Lock()
        self._cancelled: set[str] = set()
        """Running jobs asked to stop: their next progress report raises ``JobCancelled``."""
        self.on_finished: Callable[[Job, str, float], None] | None = None

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> dict[str, int]:
        # alone on the queue, whatever is running was this process's before it died; shared,
        # only jobs whose lease ran out are (another worker's may be running right now)
        report = self.store.reclaim_expired() if self.shared else self.store.recover()
        if report["requeued"] or report["failed"]:
            log_event(log, "jobs recovered after an unclean stop", logging.WARNING, **report)
        for n in range(max(1, self.settings.workers)):
            thread = threading.Thread(target=self._work, name=f"ingest-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        beat = threading.Thread(target=self._heartbeat, name="ingest-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)
        return report

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._running_lock:
            interrupted = list(self._running.values())
        for job in interrupted:
            self.store.release(job)
        self._threads.clear()

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # --- API --------------------------------------------------------------------

    def submit(self, specs: list[JobSpec]) -> list[tuple[Job, bool]]:
        """Queue ``specs`` (all or none). With a shared blob store their files are moved into it
        first, so a worker on any machine can read them; the local files are then removed."""
        max_bytes = self.settings.max_queued_mb * 1024 * 1024
        queued = self._share_uploads(specs) if self.blobs is not None else specs
        try:
            jobs = self.store.submit(queued, self.settings.max_queue_depth, self.settings.workers, max_bytes)
        except BaseException:
            if queued is not specs:
                self._drop_shared(queued)
            raise
        if queued is not specs:
            self._drop_shared([spec for spec, (_, created) in zip(queued, jobs, strict=True) if not created])
            for spec in specs:
                spec.path.unlink(missing_ok=True)
        self._wake.set()
        return jobs

    def _share_uploads(self, specs: list[JobSpec]) -> list[JobSpec]:
        assert self.blobs is not None
        shared: list[JobSpec] = []
        try:
            for spec in specs:
                key = f"uploads/{spec.document_id}/{secrets.token_hex(8)}"
                self.blobs.put_file(key, spec.path)
                shared.append(replace(spec, path=Path(BLOB_PREFIX + key)))
        except BaseException:
            self._drop_shared(shared)
            raise
        return shared

    def _drop_shared(self, specs: list[JobSpec]) -> None:
        for spec in specs:
            self.discard_upload(str(spec.path))

    def discard_upload(self, path: str) -> None:
        """Remove a job's file: from the shared blob store, or from this process's disk."""
        if path.startswith(BLOB_PREFIX):
            if self.blobs is not None:
                self.blobs.delete(path.removeprefix(BLOB_PREFIX))
        else:
            Path(path).unlink(missing_ok=True)

    def cancel(self, job_id: str) -> bool:
        """Stop a queued job at once or a running one at its next progress report (pages and
        batches of chunks: seconds); ``False`` when the job has already ended."""
        if self.store.cancel_queued_job(job_id):
            return True
        with self._running_lock:
            if job_id in self._running:
                self._cancelled.add(job_id)
                return True
        return self.store.request_cancel(job_id)  # another process's worker runs it

    def cancel_and_wait(self, job_id: str, timeout_s: float) -> Job | None:
        """Cancel a job and wait until it has ended; the ended job, or ``None`` past ``timeout_s``.

        A job that wrote its document before the cancel arrived ends ``succeeded``: the caller
        deletes what it wrote."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.store.get(job_id)
            if job is None or job.terminal:
                return job
            if time.monotonic() >= deadline:
                return None
            self.cancel(job_id)  # again each round: a job claimed meanwhile is only now running
            time.sleep(0.1)

    def check_capacity(self, tenant: str, incoming: int = 1) -> None:
        """Refuse early, before an upload is read, when the tenant's queue is already full."""
        queued, _ = self.store.queued_for(tenant)
        if queued + incoming > self.settings.max_queue_depth:
            retry_after = self.store._retry_after(queued, self.settings.workers)
            raise _too_many_queued(queued, self.settings.max_queue_depth, retry_after)

    # --- workers ----------------------------------------------------------------

    def _fetch_upload(self, job: Job) -> Path:
        """The job's bytes from the shared blob store, in this process's uploads directory."""
        if self.blobs is None:
            raise ConfigurationError("this job's file is in the shared blob store: set RAG_BLOB_URL")
        local = self.settings.uploads_dir / f"{job.id}.{secrets.token_hex(4)}.fetched"
        local.parent.mkdir(parents=True, exist_ok=True)
        if not self.blobs.fetch(job.path.removeprefix(BLOB_PREFIX), local):
            raise NotFound("the uploaded file is no longer in the blob store")
        return local

    def _heartbeat(self) -> None:
        """Renew the leases of this process's running jobs; pick up cancels asked elsewhere, and
        (shared) give back the jobs of workers that stopped heartbeating."""
        every = max(0.2, self.store.lease_s / 3)
        while not self._stop.wait(every):
            with self._running_lock:
                running = list(self._running.values())
            try:
                stop = self.store.heartbeat(running)
                if self.shared:
                    reclaimed = self.store.reclaim_expired()
                    if reclaimed["requeued"] or reclaimed["failed"]:
                        log_event(log, "jobs of a stopped worker reclaimed", logging.WARNING, **reclaimed)
                        self._wake.set()
            except DATABASE_ERRORS:
                log.exception("could not renew job leases")
                continue
            if stop:
                with self._running_lock:
                    self._cancelled.update(stop & set(self._running))

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim(self.worker_id)
            except DATABASE_ERRORS:
                log.exception("could not claim a job")
                self._stop.wait(_POLL_S)
                continue
            if job is None:
                self._wake.wait(_POLL_S)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        with self._running_lock:
            self._running[job.id] = job
        started = time.perf_counter()
        progress: dict[str, Any] = {"stage": RUNNING}
        last_write, last_stage = 0.0, ""

        def report(update: dict[str, Any]) -> None:
            nonlocal last_write, last_stage
            # nothing is written before the end, so stopping here is clean; once the document is
            # written ("done") a late cancel changes nothing
            if job.id in self._cancelled and update.get("stage") != "done":
                raise JobCancelled("the job was cancelled while it ran")
            progress.update(update)
            now = time.monotonic()
            if now - last_write >= _PROGRESS_EVERY_S or progress.get("stage") != last_stage:
                last_write, last_stage = now, str(progress.get("stage"))
                if self.store.report_progress(job, progress) and update.get("stage") != "done":
                    raise JobCancelled("the job was cancelled while it ran")

        log_event(log, "job started", job_id=job.id, document_id=job.document_id, attempt=job.attempts)
        state = FAILED
        fetched: Path | None = None
        try:
            if job.path.startswith(BLOB_PREFIX):  # queued by another process: its bytes are shared
                fetched = self._fetch_upload(job)
            result = self.handler(replace(job, path=str(fetched)) if fetched else job, report)
            self.store.succeed(job, result, progress)
            state = SUCCEEDED
            self.discard_upload(job.path)
        except RagError as exc:
            state = self.store.fail(job, exc.code, exc.message, retry=exc.status >= 500, progress=progress)
        except Exception as exc:  # a bug in one document must not kill the worker
            log.exception("job %s crashed", job.id)
            state = self.store.fail(
                job,
                "internal_error",
                f"{exc.__class__.__name__} while ingesting",
                retry=True,
                progress=progress,
            )
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)
                self._cancelled.discard(job.id)
            if fetched is not None:
                fetched.unlink(missing_ok=True)
        if state == FAILED:
            self.discard_upload(job.path)
        seconds = time.perf_counter() - started
        log_event(log, "job finished", job_id=job.id, state=state, seconds=round(seconds, 3))
        if self.on_finished is not None:
            self.on_finished(job, state, seconds)


__all__ = [
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STATES",
    "SUCCEEDED",
    "Job",
    "JobQueue",
    "JobSpec",
    "JobStore",
]
