"""kill -9 during ingestion, start again: the job is retried and the document is indexed exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN_KEY, ALPHA_KEY, LiveServer, upload, wait_job

pytestmark = pytest.mark.slow


def covid_papers(datasets: Path, count: int) -> bytes:
    """Real text long enough that embedding it takes several seconds."""
    data = json.loads((datasets / "covidqa_deepset_200423" / "200423_covidQA.json").read_text())
    papers = [p["context"] for article in data["data"] for p in article["paragraphs"]]
    papers = [p for p in papers if len(p) > 15_000][:count]
    return "\n\n".join(papers).encode()


def test_kill_9_during_ingestion_then_restart(tmp_path: Path, datasets: Path) -> None:
    server = LiveServer(
        tmp_path / "var",
        {"RAG_API_KEYS": f"{ALPHA_KEY}:alpha", "RAG_ADMIN_KEY": ADMIN_KEY, "RAG_RATE_LIMIT_PER_MINUTE": "0"},
        name="crash",
    )
    content = covid_papers(datasets, 3)
    server.start(ready=False)  # uploads are accepted (queued) while models load
    try:
        with server.client(ALPHA_KEY) as client:
            resp = upload(client, [("covid-papers.txt", content)])
            assert resp.status_code == 202, resp.text
            (item,) = resp.json()["items"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                job = client.get(f"/v1/jobs/{item['job_id']}").json()
                embedded_at_kill = job["progress"].get("chunks_embedded", 0)
                if job["state"] == "running" and embedded_at_kill > 0:
                    break
                assert job["state"] in ("queued", "running"), job
                time.sleep(0.05)
            else:
                raise AssertionError("the job never got to embedding")
        server.kill()

        server.start(ready=False)
        with server.client(ALPHA_KEY) as client:
            job = wait_job(client, item["job_id"], timeout=180)
            assert job["state"] == "succeeded", job
            assert job["attempts"] == 2 and job["result"]["duplicate"] is False
            docs = client.get("/v1/documents").json()["documents"]
            assert [d["id"] for d in docs] == [item["document_id"]]
            assert docs[0]["chunks"] == job["result"]["chunks"] > embedded_at_kill  # killed half-way
            again = upload(client, [("covid-papers.txt", content)])
            assert again.status_code == 200 and again.json()["items"][0]["status"] == "duplicate"
        with server.client(ADMIN_KEY) as admin:
            stats = admin.get("/v1/admin/stats").json()
        (collection,) = stats["index"]["collections"].values()
        assert collection["consistent"] is True
        assert collection["documents"] == 1
        assert collection["chroma_chunks"] == collection["lexical_chunks"] == docs[0]["chunks"]
        assert stats["jobs"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}
        assert "jobs recovered after an unclean stop" in server.log_text()
    finally:
        server.stop()
