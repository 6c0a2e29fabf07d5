"""HTTP service benchmark: 50 documents uploaded at once, then concurrent clients asking questions.

Both run against a real ``rag serve`` process on 127.0.0.1 with the embedded defaults (its own
data directory, the extractive answerer, the default re-ranker setting), driven over HTTP,
so the figures include parsing, auth, the job queue, retrieval and answering.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BENCH_KEY = "bench-key-0123456789abcdef"
ADMIN_KEY = "bench-admin-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    """Resident memory of a process from /proc (Linux), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _percentile_ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] * 1000, 1)


def squad_corpus(
    datasets: Path, documents: int, per_doc: int = 6
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """``documents`` real texts (``per_doc`` SQuAD paragraphs each) and the answerable questions on them."""
    data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    paragraphs = [(a["title"], p) for a in data["data"] for p in a["paragraphs"]]
    per_doc = min(per_doc, max(1, len(paragraphs) // documents))
    docs: list[tuple[str, bytes]] = []
    questions: list[str] = []
    for i in range(documents):
        group = paragraphs[i * per_doc : (i + 1) * per_doc]
        title = group[0][0].replace("_", " ")
        text = f"{title}\n\n" + "\n\n".join(p["context"] for _, p in group)
        docs.append((f"{group[0][0].lower()}-{i:02d}.txt", text.encode()))
        questions.extend(q["question"] for _, p in group for q in p["qas"] if not q.get("is_impossible"))
    return docs, questions


class _Server:
    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "ANONYMIZED_TELEMETRY": "False",
                "RAG_DATA_DIR": str(data_dir),
                "RAG_API_KEYS": f"{BENCH_KEY}:bench",
                "RAG_ADMIN_KEY": ADMIN_KEY,
                "RAG_RATE_LIMIT_PER_MINUTE": "0",
                "RAG_LOG_LEVEL": "WARNING",
            }
        )
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("rag")), "serve", "--port", str(self.port)],
            cwd=data_dir.parent,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError("server not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


async def _upload_all(url: str, docs: list[tuple[str, bytes]]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    limits = httpx.Limits(max_connections=len(docs))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
        started = time.perf_counter()

        async def one(name: str, content: bytes) -> httpx.Response:
            return await client.post(
                "/v1/documents", files={"files": (name, content)}, data={"collection": "bench"}
            )

        responses = await asyncio.gather(*(one(n, c) for n, c in docs))
        accepted_s = time.perf_counter() - started
        statuses = [r.status_code for r in responses]
        jobs = [r.json()["items"][0]["job_id"] for r in responses if r.status_code == 202]
        pending = set(jobs)
        states: dict[str, str] = {}
        while pending:
            await asyncio.sleep(0.5)
            for job_id in list(pending):
                job = (await client.get(f"/v1/jobs/{job_id}")).json()
                if job["state"] in ("succeeded", "failed"):
                    states[job_id] = job["state"]
                    pending.discard(job_id)
        indexed_s = time.perf_counter() - started
        listed = (await client.get("/v1/documents", params={"collection": "bench", "limit": 1000})).json()
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        stats = (await admin.get("/v1/admin/stats")).json()
    index = stats["index"]["collections"].get("bench::bench", {})
    return {
        "documents": len(docs),
        "accepted_202": statuses.count(202),
        "other_statuses": sorted(s for s in statuses if s != 202),
        "seconds_to_accept_all": round(accepted_s, 2),
        "seconds_to_all_indexed": round(indexed_s, 2),
        "succeeded": list(states.values()).count("succeeded"),
        "failed": list(states.values()).count("failed"),
        "documents_listed": listed["total"],
        "jobs_lost": len(docs) - len(states),
        "chunks": index.get("chunks"),
        "index_consistent": index.get("consistent"),
    }


async def _load(url: str, questions: list[str], duration_s: float, clients: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    answers = {"abstained": 0, "cached": 0, "cited": 0}
    stages: dict[str, list[float]] = {}
    rng = random.Random(7)
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
        stop_at = time.perf_counter() + duration_s

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                question = rng.choice(questions)
                t0 = time.perf_counter()
                try:
                    resp = await client.post("/v1/query", json={"question": question, "collection": "bench"})
                except httpx.HTTPError as exc:
                    errors[exc.__class__.__name__] = errors.get(exc.__class__.__name__, 0) + 1
                    continue
                if resp.status_code != 200:
                    key = str(resp.status_code)
                    errors[key] = errors.get(key, 0) + 1
                    continue
                latencies.append(time.perf_counter() - t0)
                body = resp.json()
                answers["abstained"] += int(body["abstained"])
                answers["cached"] += int(body["cached"])
                answers["cited"] += int(bool(body["citations"]))
                for stage, ms in body["timings"].items():
                    stages.setdefault(stage, []).append(ms)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies),
        "errors": errors,
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "p50_ms": _percentile_ms(latencies, 0.50) if latencies else None,
        "p95_ms": _percentile_ms(latencies, 0.95) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "answers": answers,
        "server_stage_mean_ms": {k: round(statistics.fmean(v), 1) for k, v in stages.items()},
    }


def run_api_bench(
    out: dict[str, Any],
    duration_s: float = 60,
    clients: int = 20,
    *,
    datasets: Path | None = None,
    quick: bool = False,
    documents: int = 50,
) -> None:
    """Fill ``out`` with the upload run (``uploads``) and the load run (``load``)."""
    datasets = datasets or REPO.parent / "shared" / "datasets"
    if quick:
        duration_s, clients, documents = min(duration_s, 10), min(clients, 5), min(documents, 10)
    docs, questions = squad_corpus(datasets, documents)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        server = _Server(Path(tmp) / "var", Path(tmp) / "server.log")
        try:
            out["server_ready_s"] = round(server.wait_ready(), 1)
            out["uploads"] = asyncio.run(_upload_all(server.url, docs))
            # first-use costs (thread pools, caches) are paid before the RSS baseline is taken
            warm = asyncio.run(_load(server.url, questions, min(15.0, duration_s / 4), clients))
            rss_start = _rss_mb(server.proc.pid)
            load = asyncio.run(_load(server.url, questions, duration_s, clients))
            rss_end = _rss_mb(server.proc.pid)
            load["warm_up_requests"] = warm["requests"]
            load["rss_start_mb"] = rss_start
            load["rss_end_mb"] = rss_end
            load["rss_growth_pct"] = round(100 * (rss_end - rss_start) / rss_start, 1)
            load["questions_pool"] = len(questions)
            out["load"] = load
        finally:
            server.stop()
            log_tail = (Path(tmp) / "server.log").read_text(errors="replace")[-2000:]
    if "load" not in out or out["load"]["errors"] or out["uploads"]["failed"]:
        out["server_log_tail"] = log_tail
    out["goals"] = {
        "no_errors": not out["load"]["errors"],
        "rss_growth_under_10pct": out["load"]["rss_growth_pct"] < 10,
        "no_job_lost": out["uploads"]["jobs_lost"] == 0 and out["uploads"]["failed"] == 0,
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Benchmark the HTTP service.")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--documents", type=int, default=50)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    run_api_bench(result, args.duration, args.clients, documents=args.documents)
    print(json.dumps(result, indent=2))
