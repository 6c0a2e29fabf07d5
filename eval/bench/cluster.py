"""``make bench`` section ``cluster``: the local cluster (``deploy.cluster``) measured side by side.

Ingestion with 1 and 2 workers, questions through 1 and 2 API replicas, and how long after a job
succeeds another replica's lexical search finds the document. On a 2-core machine every process
competes for the same two cores, so the gains are bounded by cores, not by the design.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from deploy.cluster import Cluster

KEY = "bench-key-0123456789abcdef"


def _squad(datasets: Path) -> tuple[list[tuple[str, bytes]], list[str]]:
    data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    docs: list[tuple[str, bytes]] = []
    questions: list[str] = []
    for article in data["data"]:
        for n, paragraph in enumerate(article["paragraphs"]):
            docs.append((f"{article['title']}-{n}.txt", paragraph["context"].encode()))
            questions += [qa["question"] for qa in paragraph["qas"] if not qa.get("is_impossible")][:1]
    return docs, questions


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300)


def _ingest(cluster: Cluster, docs: list[tuple[str, bytes]], collection: str) -> float:
    """Seconds from the first upload to the last job's end, uploads spread over the replicas."""
    started = time.perf_counter()
    job_ids = []
    urls = cluster.replica_urls
    for n in range(0, len(docs), 10):
        with _client(urls[(n // 10) % len(urls)]) as http:
            resp = http.post(
                "/v1/documents",
                files=[("files", (name, body, "text/plain")) for name, body in docs[n : n + 10]],
                data={"collection": collection},
            )
        resp.raise_for_status()
        job_ids += [item["job_id"] for item in resp.json()["items"]]
    with _client(urls[0]) as http:
        pending = set(job_ids)
        while pending:
            for job_id in list(pending):
                if http.get(f"/v1/jobs/{job_id}").json()["state"] in ("succeeded", "failed"):
                    pending.discard(job_id)
            time.sleep(0.2)
    return time.perf_counter() - started


def _questions(urls: list[str], questions: list[str], collection: str, clients: int = 4) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def ask(n: int) -> None:
        with _client(urls[n % len(urls)]) as http:
            t0 = time.perf_counter()
            resp = http.post("/v1/query", json={"question": questions[n], "collection": collection})
            resp.raise_for_status()
            with lock:
                latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(ask, range(len(questions))))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "questions_per_s": round(len(questions) / wall, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
    }


def _staleness(cluster: Cluster, docs: list[tuple[str, bytes]]) -> list[float]:
    """Seconds from a job's end (its ``finished_at``) to the other replica's first lexical hit."""
    writer, reader = cluster.replica_urls[0], cluster.replica_urls[1]
    found: list[float] = []
    for n, (name, body) in enumerate(docs):
        marker = f"zqxmarker{n}x{int(time.time())}"
        with _client(writer) as http:
            resp = http.post(
                "/v1/documents",
                files=[("files", (name, body + f" {marker}.".encode(), "text/plain"))],
                data={"collection": "staleness"},
            )
            resp.raise_for_status()
            job_id = resp.json()["items"][0]["job_id"]
        with _client(reader) as http:
            while True:
                hits = http.post(
                    "/v1/search", json={"query": marker, "collection": "staleness", "top_k": 3}
                ).json()
                if any(  # found by the lexical side, which had to catch up with the catalog
                    marker in (h.get("text") or "") and h["scores"].get("lexical_rank") is not None
                    for h in hits.get("results", [])
                ):
                    seen = time.time()
                    break
                time.sleep(0.02)
        with _client(writer) as http:
            finished = http.get(f"/v1/jobs/{job_id}").json()["finished_at"]
        found.append(max(0.0, seen - float(finished)))
    return found


def run_cluster_bench(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    docs, questions = _squad(datasets)
    n_docs, n_questions = (12, 24) if quick else (40, 80)
    with tempfile.TemporaryDirectory(prefix="rag-cluster-bench-") as tmp:
        cluster = Cluster(
            Path(tmp),
            replicas=2,
            workers=2,
            extra_env={"RAG_API_KEYS": f"{KEY}:bench", "RAG_RATE_LIMIT_PER_MINUTE": "1000000"},
        )
        try:
            started = time.perf_counter()
            cluster.start()
            ready_s = time.perf_counter() - started
            spare = cluster.member("worker", 1)
            runs: dict[int, list[float]] = {1: [], 2: []}
            for round_no, workers in enumerate((1, 2, 2, 1)):
                if workers == 1 and spare.process is not None and spare.process.poll() is None:
                    spare.stop()
                elif workers == 2 and (spare.process is None or spare.process.poll() is not None):
                    spare.start()
                    spare.wait_ready()
                batch = docs[round_no * n_docs : (round_no + 1) * n_docs]
                runs[workers].append(_ingest(cluster, batch, f"ingest-{round_no}"))
            if spare.process is None or spare.process.poll() is not None:
                spare.start()
                spare.wait_ready()
            _ingest(cluster, docs[: n_docs * 2], "questions")
            asked = questions[:n_questions]
            replicas: dict[int, list[dict[str, float]]] = {1: [], 2: []}
            for count in (1, 2, 2, 1):
                replicas[count].append(_questions(cluster.replica_urls[:count], asked, "questions"))
            stale = _staleness(cluster, docs[-5:])
        finally:
            cluster.stop()

    def median_of(rows: list[dict[str, float]], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 2)

    docs_per_s: Callable[[int], float] = lambda w: round(n_docs / statistics.median(runs[w]), 2)  # noqa: E731
    out["cluster"] = {
        "machine_cores": 2,
        "cluster_ready_s": round(ready_s, 1),
        "ingestion": {
            "documents_per_run": n_docs,
            "docs_per_s_1_worker": docs_per_s(1),
            "docs_per_s_2_workers": docs_per_s(2),
            "ratio_2_over_1": round(docs_per_s(2) / docs_per_s(1), 2),
            "runs_s": {str(k): [round(v, 2) for v in vals] for k, vals in runs.items()},
        },
        "questions": {
            "clients": 4,
            "questions_per_run": n_questions,
            **{
                f"{count}_replica{'s' if count > 1 else ''}": {
                    key: median_of(rows, key) for key in ("questions_per_s", "p50_ms", "p95_ms")
                }
                for count, rows in replicas.items()
            },
        },
        "lexical_staleness_s": {
            "median": round(statistics.median(stale), 3),
            "max": round(max(stale), 3),
            "samples": [round(s, 3) for s in stale],
        },
    }
