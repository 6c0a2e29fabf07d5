"""Two API replicas and two ingestion workers on real shared engines (PostgreSQL, Redis,
``chroma run``, a shared blob directory), each process with its own data directory, as
``make cluster`` starts them; one worker and one replica are killed with SIGKILL mid-ingestion."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from deploy.cluster import Cluster
from tests.api.conftest import ADMIN_KEY, ALPHA_KEY, KEYS, upload

pytestmark = pytest.mark.slow

DOCUMENTS = 50


def real_documents(datasets: Path) -> list[tuple[str, bytes]]:
    """48 SQuAD 2.0 paragraphs (Wikipedia) as text files and two scanned filing pages (OCR)."""
    squad = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    files: list[tuple[str, bytes]] = []
    for article in squad["data"]:
        for n, paragraph in enumerate(article["paragraphs"][:3]):
            files.append((f"{article['title']}-{n}.txt", paragraph["context"].encode()))
    files = files[: DOCUMENTS - 2]
    scanned = sorted((datasets / "financebench_scanned_evidence" / "pdfs").glob("*.pdf"))[:2]
    files += [(f"scanned-{p.name}", p.read_bytes()) for p in scanned]
    assert len(files) == DOCUMENTS and len({content for _, content in files}) == DOCUMENTS
    return files


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(
        tmp_path_factory.mktemp("cluster"),
        replicas=2,
        workers=2,
        extra_env={
            "RAG_API_KEYS": KEYS,
            "RAG_ADMIN_KEY": ADMIN_KEY,
            "RAG_RATE_LIMIT_PER_MINUTE": "100000",
            "RAG_JOB_LEASE_S": "3",
            "RAG_RERANKER": "none",
        },
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


def client(url: str, key: str = ALPHA_KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def running_jobs_of(database_url: str, pid: int) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = 'running' AND worker LIKE %s", (f"%:{pid}:%",)
        ).fetchone()
    return int(row[0]) if row else 0


def test_fifty_documents_through_two_replicas_survive_a_killed_worker_and_replica(
    cluster: Cluster, datasets: Path
) -> None:
    files = real_documents(datasets)
    replicas = cluster.replica_urls
    job_ids: dict[str, str] = {}
    for n, (name, content) in enumerate(files):
        with client(replicas[n % 2]) as http:
            resp = upload(http, [(name, content)])
        assert resp.status_code == 202, resp.text
        [accepted] = resp.json()["items"]
        job_ids[name] = accepted["job_id"]

    # SIGKILL a worker while it holds a job, and a replica, mid-ingestion; then restart both
    worker, replica = cluster.member("worker", 0), cluster.member("replica", 1)
    assert worker.process is not None
    database_url = cluster.settings_env()["RAG_DATABASE_URL"]
    deadline = time.monotonic() + 120
    while running_jobs_of(database_url, worker.process.pid) == 0:
        assert time.monotonic() < deadline, "worker-0 never took a job"
        time.sleep(0.05)
    killed_pid = worker.process.pid
    worker.kill()
    replica.kill()
    with client(replicas[0]) as http:  # the other replica keeps answering meanwhile
        assert http.get("/v1/documents").status_code == 200
    worker.start()
    replica.start()
    worker.wait_ready()
    replica.wait_ready_rebinding()
    replicas = cluster.replica_urls  # a restarted replica may have had to take another port

    # every job ends succeeded: the dead worker's job was taken again when its lease ran out
    deadline = time.monotonic() + 600
    with client(replicas[1]) as http:
        while True:
            jobs = {name: http.get(f"/v1/jobs/{job_id}").json() for name, job_id in job_ids.items()}
            if all(j["state"] in ("succeeded", "failed") for j in jobs.values()):
                break
            assert time.monotonic() < deadline, {
                n: j["state"] for n, j in jobs.items() if j["state"] != "succeeded"
            }
            time.sleep(1)
    assert {n: j["state"] for n, j in jobs.items() if j["state"] != "succeeded"} == {}
    with psycopg.connect(database_url) as conn:
        retried = conn.execute("SELECT COUNT(*) FROM jobs WHERE attempts > 1").fetchone()
        active = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT content_sha256), COUNT(DISTINCT name) FROM documents WHERE state = 'active'"
        ).fetchone()
        leftovers = conn.execute("SELECT COUNT(*) FROM documents WHERE state != 'active'").fetchone()
    assert retried is not None and retried[0] >= 1, f"no job of worker {killed_pid} was retried"
    assert active == (DOCUMENTS, DOCUMENTS, DOCUMENTS) and leftovers == (0,)  # each exactly once

    # catalog, Chroma and each replica's lexical index agree; none was lost
    for url in replicas:
        with client(url, ADMIN_KEY) as http:
            stats = http.get("/v1/admin/stats").json()
        [(_, collection)] = [
            (name, c) for name, c in stats["index"]["collections"].items() if name.startswith("alpha")
        ]
        assert collection["documents"] == DOCUMENTS
        assert collection["chunks"] == collection["chroma_chunks"] == collection["lexical_chunks"] > 0

    # both replicas answer the same question with the same citations
    question = {"question": "What did the Normans give their name to?", "top_k": 5}
    answers: list[Any] = []
    for url in replicas:
        with client(url) as http:
            resp = http.post("/v1/query", json=question)
        assert resp.status_code == 200, resp.text
        answers.append([(c["document_id"], c["pages"], c["chunk_id"]) for c in resp.json()["citations"]])
    assert answers[0] and answers[0] == answers[1]

    # the originals went to the shared blob store: a page renders on the replica that never saw the upload
    with client(replicas[0]) as http:
        docs = {d["name"]: d for d in http.get("/v1/documents").json()["documents"]}
        scanned = next(d for name, d in docs.items() if name.startswith("scanned-"))
        page = http.get(f"/v1/documents/{scanned['id']}/pages/1", params={"width": 400})
    assert page.status_code == 200 and page.content[:8] == b"\x89PNG\r\n\x1a\n"
