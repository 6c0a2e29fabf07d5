"""The durable job queue on SQLite and PostgreSQL: claims, bounded retries, crash recovery, backpressure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, Job, JobQueue, JobSpec, JobStore
from rag.db import PostgresDatabase
from rag.errors import CorruptDocument, OcrUnavailable, QueueFull
from rag.settings import Settings


def spec(tmp_path: Path, doc: str, tenant: str = "t", size: int | None = None) -> JobSpec:
    path = tmp_path / f"{doc}.upload"
    path.write_text(doc)
    return JobSpec(tenant, f"{tenant}::default", doc, f"{doc}.txt", path, {"k": 1}, size_bytes=size)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> JobStore:
    """Every queue test runs on both engines."""
    if request.param == "postgresql":
        return JobStore(PostgresDatabase(request.getfixturevalue("pg_url"), "jobs"), max_attempts=2)
    return JobStore(tmp_path / "jobs.sqlite3", max_attempts=2)


def test_submit_claim_succeed(store: JobStore, tmp_path: Path) -> None:
    [(job, created)] = store.submit([spec(tmp_path, "a")], max_depth=10)
    assert created and job.state == QUEUED and job.metadata == {"k": 1}
    claimed = store.claim()
    assert claimed is not None and claimed.id == job.id and claimed.state == RUNNING and claimed.attempts == 1
    assert store.claim() is None  # nothing else queued
    assert store.succeed(claimed, {"chunks": 3}, {"stage": "done"})
    done = store.get(job.id)
    assert done is not None and done.state == SUCCEEDED and done.result == {"chunks": 3}
    assert done.finished_at is not None and done.started_at is not None


def test_same_document_gets_the_pending_job_back(store: JobStore, tmp_path: Path) -> None:
    [(first, _)] = store.submit([spec(tmp_path, "a")], max_depth=10)
    pairs = store.submit([spec(tmp_path, "a"), spec(tmp_path, "b"), spec(tmp_path, "b")], max_depth=10)
    assert [created for _, created in pairs] == [False, True, False]
    assert pairs[0][0].id == first.id and pairs[1][0].id == pairs[2][0].id
    assert store.counts()[QUEUED] == 2


def test_backpressure_refuses_all_or_nothing(store: JobStore, tmp_path: Path) -> None:
    store.submit([spec(tmp_path, "a"), spec(tmp_path, "b")], max_depth=3)
    with pytest.raises(QueueFull) as caught:
        store.submit([spec(tmp_path, "c"), spec(tmp_path, "d")], max_depth=3)
    assert caught.value.retry_after >= 1 and caught.value.status == 429
    assert store.counts()[QUEUED] == 2  # neither c nor d was queued
    store.submit([spec(tmp_path, "c")], max_depth=3)
    assert store.counts()[QUEUED] == 3


def test_one_tenants_backlog_fills_only_its_own_queue(store: JobStore, tmp_path: Path) -> None:
    store.submit([spec(tmp_path, f"a{n}", tenant="alpha") for n in range(3)], max_depth=3)
    with pytest.raises(QueueFull) as caught:
        store.submit([spec(tmp_path, "a3", tenant="alpha")], max_depth=3)
    assert "3 of your documents" in caught.value.message  # its own count, nobody else's
    [(_, created)] = store.submit([spec(tmp_path, "b0", tenant="beta")], max_depth=3)
    assert created and store.queued_for("beta")[0] == 1 and store.queued_for("alpha")[0] == 3


def test_a_tenants_queued_bytes_are_bounded_and_its_own(store: JobStore, tmp_path: Path) -> None:
    mb = 1024 * 1024
    store.submit([spec(tmp_path, f"a{n}", "alpha", size=40 * mb) for n in range(2)], 50, max_bytes=100 * mb)
    with pytest.raises(QueueFull) as caught:  # 120 MB would wait: refused whole
        store.submit([spec(tmp_path, "a2", "alpha", size=40 * mb)], 50, max_bytes=100 * mb)
    assert "125,829,120 bytes" in caught.value.message and store.queued_for("alpha") == (2, 80 * mb)
    [(_, created)] = store.submit([spec(tmp_path, "b0", "beta", size=90 * mb)], 50, max_bytes=100 * mb)
    assert created  # beta's room is its own
    store.succeed(store.claim() or pytest.fail("nothing to claim"), {}, {})  # one of alpha's is done
    store.submit([spec(tmp_path, "a2", "alpha", size=40 * mb)], 50, max_bytes=100 * mb)  # room again


def test_workers_take_tenants_in_turn(store: JobStore, tmp_path: Path) -> None:
    store.submit([spec(tmp_path, f"a{n}", tenant="alpha") for n in range(20)], max_depth=50)
    first = store.claim()
    assert first is not None and first.tenant == "alpha"
    # beta's first document arrives behind alpha's twenty: it is the very next one taken
    store.submit([spec(tmp_path, "b0", tenant="beta")], max_depth=50)
    second = store.claim()
    assert second is not None and second.tenant == "beta" and second.document_id == "b0"
    third = store.claim()
    assert third is not None and third.tenant == "alpha" and third.document_id == "a1"  # alpha in order


def test_recover_requeues_running_jobs_until_attempts_are_spent(store: JobStore, tmp_path: Path) -> None:
    [(job, _)] = store.submit([spec(tmp_path, "a")], max_depth=10)
    store.claim()  # attempt 1, then the process "dies"
    assert store.recover() == {"requeued": 1, "failed": 0}
    again = store.claim()
    assert again is not None and again.attempts == 2
    assert store.recover() == {"requeued": 0, "failed": 1}  # died during the last allowed attempt
    final = store.get(job.id)
    assert final is not None and final.state == FAILED and final.error_code == "interrupted"


def test_a_job_the_process_died_during_is_retried_once_only(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3", max_attempts=5)  # errors may retry more often
    [(job, _)] = store.submit([spec(tmp_path, "a")], max_depth=10)
    store.claim()
    assert store.recover() == {"requeued": 1, "failed": 0}
    store.claim()
    assert store.recover() == {"requeued": 0, "failed": 1}  # it killed the service twice: no third run
    final = store.get(job.id)
    assert final is not None and (final.state, final.attempts, final.error_code) == (FAILED, 2, "interrupted")


def test_a_stale_worker_cannot_overwrite_a_reclaimed_job(store: JobStore, tmp_path: Path) -> None:
    store.submit([spec(tmp_path, "a")], max_depth=10)
    stale = store.claim()
    assert stale is not None
    store.recover()
    fresh = store.claim()
    assert fresh is not None and fresh.run_token != stale.run_token
    assert not store.succeed(stale, {"from": "stale"}, {})
    assert store.succeed(fresh, {"from": "fresh"}, {})
    job = store.get(fresh.id)
    assert job is not None and job.result == {"from": "fresh"}


def test_a_lease_that_runs_out_gives_the_job_to_another_worker_at_most_once_more(
    store: JobStore, tmp_path: Path
) -> None:
    store.lease_s = 0.3
    [(job, _)] = store.submit([spec(tmp_path, "a")], max_depth=10)
    first = store.claim("worker-1")
    assert first is not None and store.heartbeat([first]) == set()  # alive: its lease is renewed
    assert store.reclaim_expired() == {"requeued": 0, "failed": 0}
    time.sleep(0.4)  # worker-1 died: no heartbeat
    assert store.reclaim_expired() == {"requeued": 1, "failed": 0}
    assert store.heartbeat([first]) == {job.id}  # had it only hung, it now learns the job is not its own
    second = store.claim("worker-2")
    assert second is not None and second.attempts == 2 and second.run_token != first.run_token
    assert not store.succeed(first, {"from": "worker-1"}, {})
    time.sleep(0.4)  # worker-2 died too
    assert store.reclaim_expired() == {"requeued": 0, "failed": 1}
    final = store.get(job.id)
    assert final is not None and (final.state, final.error_code) == (FAILED, "interrupted")


def test_any_process_can_cancel_a_running_job(store: JobStore, tmp_path: Path) -> None:
    [(job, _)] = store.submit([spec(tmp_path, "a")], max_depth=10)
    running = store.claim("worker-1")
    assert running is not None
    assert not store.report_progress(running, {"stage": "embedding"})
    assert store.request_cancel(job.id)  # from an API replica
    assert store.report_progress(running, {"stage": "embedding"})  # the worker's next report stops it
    assert store.heartbeat([running]) == {job.id}
    assert not store.request_cancel("no-such-job")


def test_workers_claiming_at_once_take_each_job_exactly_once(store: JobStore, tmp_path: Path) -> None:
    store.submit([spec(tmp_path, f"d{n}", tenant=f"t{n % 3}") for n in range(24)], max_depth=100)
    taken: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job := store.claim(name)) is not None:
            with lock:
                taken.append(job.id)
            time.sleep(0.005)
            store.succeed(job, {}, {})

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == len(set(taken)) == 24
    assert store.counts()["succeeded"] == 24


def test_cancel_queued(store: JobStore, tmp_path: Path) -> None:
    [(job, _)] = store.submit([spec(tmp_path, "a")], max_depth=10)
    assert [j.id for j in store.cancel_queued("a")] == [job.id]
    cancelled = store.get(job.id)
    assert cancelled is not None and cancelled.state == FAILED and cancelled.error_code == "cancelled"
    assert store.claim() is None


def run_queue(
    tmp_path: Path,
    handler: Callable[[Job, Callable[[dict[str, Any]], None]], dict[str, Any]],
    docs: list[str],
) -> tuple[JobQueue, list[Job]]:
    settings = Settings(data_dir=tmp_path / "var", workers=2, max_queue_depth=50)
    queue = JobQueue(
        settings, handler, store=JobStore(tmp_path / "q.sqlite3", max_attempts=3, backoff_base_s=0.01)
    )
    queue.start()
    jobs = [job for job, _ in queue.submit([spec(tmp_path, d) for d in docs])]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = [queue.store.get(j.id) for j in jobs]
        if all(j is not None and j.terminal for j in current):
            break
        time.sleep(0.02)
    queue.stop()
    return queue, [j for j in (queue.store.get(j.id) for j in jobs) if j is not None]


def test_workers_run_jobs_report_progress_and_remove_uploads(tmp_path: Path) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def handler(job: Job, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        progress({"stage": "embedding", "chunks_embedded": 1})
        with lock:
            seen.append(job.document_id)
        return {"document_id": job.document_id}

    _, jobs = run_queue(tmp_path, handler, [f"d{i}" for i in range(6)])
    assert sorted(seen) == [f"d{i}" for i in range(6)]  # each exactly once
    assert all(j.state == SUCCEEDED and j.progress["stage"] == "embedding" for j in jobs)
    assert all(not Path(j.path).exists() for j in jobs)


def test_document_errors_fail_at_once_and_infrastructure_errors_are_retried(tmp_path: Path) -> None:
    calls: dict[str, int] = {}

    def handler(job: Job, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        calls[job.document_id] = calls.get(job.document_id, 0) + 1
        if job.document_id == "corrupt":
            raise CorruptDocument("the PDF is truncated")
        if job.document_id == "flaky" and calls["flaky"] == 1:
            raise OcrUnavailable("tesseract went away")
        if job.document_id == "bug":
            raise ValueError("a bug")
        return {}

    settings_attempts = 3
    _, jobs = run_queue(tmp_path, handler, ["corrupt", "flaky", "bug"])
    by_doc = {j.document_id: j for j in jobs}
    assert by_doc["corrupt"].state == FAILED and by_doc["corrupt"].error_code == "corrupt_document"
    assert calls["corrupt"] == 1
    assert by_doc["flaky"].state == SUCCEEDED and calls["flaky"] == 2
    assert by_doc["bug"].state == FAILED and by_doc["bug"].error_code == "internal_error"
    assert calls["bug"] == settings_attempts and "ValueError" in (by_doc["bug"].error_message or "")


def test_a_worker_on_another_machine_runs_jobs_from_the_shared_blob_store(
    tmp_path: Path, pg_url: str
) -> None:
    """An API replica queues (its uploads go to the shared store, its local copies are removed); a
    worker with its own data directory runs them, reading the bytes from the store; the store is
    emptied as the jobs end. A second submit of the same content gets the pending job back and
    leaves no blob behind."""
    shared = (tmp_path / "shared-volume").as_uri()
    replica = JobQueue(
        Settings(data_dir=tmp_path / "replica", blob_url=shared, database_url=pg_url, run_jobs=False),
        lambda job, progress: {},
    )
    seen: dict[str, str] = {}

    def handler(job: Job, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        path = Path(job.path)
        assert path.is_relative_to(tmp_path / "worker")  # a local copy on the worker's machine
        seen[job.document_id] = path.read_text()
        return {}

    worker = JobQueue(
        Settings(data_dir=tmp_path / "worker", blob_url=shared, database_url=pg_url, workers=2), handler
    )
    uploads = [spec(tmp_path, f"d{i}") for i in range(4)]
    jobs = [job for job, created in replica.submit(uploads) if created]
    assert len(jobs) == 4 and all(job.path.startswith("blob:uploads/") for job in jobs)
    assert not any(u.path.exists() for u in uploads)  # the replica's copies are gone
    again = spec(tmp_path, "d0")
    [(same, created)] = replica.submit([again])
    assert not created and same.id == jobs[0].id and not again.path.exists()
    assert replica.blobs is not None and len(list(replica.blobs.keys("uploads/"))) == 4
    worker.start()
    deadline = time.monotonic() + 30
    while not all((j := worker.store.get(job.id)) is not None and j.terminal for job in jobs):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    worker.stop()
    assert seen == {f"d{i}": f"d{i}" for i in range(4)}
    assert all(worker.store.get(job.id).state == SUCCEEDED for job in jobs)  # type: ignore[union-attr]
    assert list(replica.blobs.keys()) == []
    assert not list((tmp_path / "worker" / "uploads").glob("*"))
