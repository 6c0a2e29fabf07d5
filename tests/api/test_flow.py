"""Upload -> job -> indexed document -> cited answer, streamed and not, against a real server."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import ADMIN_KEY, ALPHA_KEY, BETA_KEY, LiveServer, assert_problem, upload, wait_job
from tests.api.pdfgen import make_pdf

pytestmark = pytest.mark.slow

FRESNEL_QUESTION = "Who presented a new kind of lens for lighthouses in 1822?"


def parse_sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = re.search(r"^event: (.*)$", block, re.M)
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        events.append((name.group(1) if name else "message", json.loads(data)))
    return events


def test_sample_documents_are_ingested_on_first_start(live: LiveServer, samples_indexed: dict) -> None:
    assert set(samples_indexed) == {"lighthouses.pdf", "normans.md", "steam_engine.md"}
    assert all(d["state"] == "indexed" and d["chunks"] > 0 for d in samples_indexed.values())
    assert samples_indexed["lighthouses.pdf"]["pages"] == 2
    assert samples_indexed["lighthouses.pdf"]["kind"] == "pdf"
    assert f"curl -s http://127.0.0.1:{live.port}/v1/query" in live.log_text()


def test_upload_runs_a_job_to_an_indexed_document(live: LiveServer) -> None:
    pdf = make_pdf(
        [
            "Harbour notes. The harbour master of Port Wren keeps the tide tables.",
            "The breakwater at Port Wren was rebuilt in 1911 after a winter storm destroyed it.",
        ]
    )
    with live.client(ALPHA_KEY) as client:
        resp = upload(client, [("port-wren.pdf", pdf)], collection="harbours", metadata='{"region": "north"}')
        assert resp.status_code == 202, resp.text
        (item,) = resp.json()["items"]
        assert item["status"] == "queued" and item["collection"] == "harbours"
        job = wait_job(client, item["job_id"])
        assert job["state"] == "succeeded", job
        assert job["document_id"] == item["document_id"]
        assert job["progress"]["pages_total"] == job["progress"]["pages_read"] == 2
        assert job["progress"]["chunks_embedded"] == job["result"]["chunks"] >= 1
        assert job["error"] is None and job["attempts"] == 1
        assert job["timings"]["total"] >= job["timings"]["running"] > 0

        doc = client.get(f"/v1/documents/{item['document_id']}").json()
        assert doc["state"] == "indexed" and doc["name"] == "port-wren.pdf"
        assert (doc["pages"], doc["ocr_pages"], doc["chunks"]) == (2, 0, job["result"]["chunks"])
        assert doc["metadata"]["region"] == "north" and doc["collection"] == "harbours"
        listed = client.get("/v1/documents", params={"collection": "harbours"}).json()
        assert [d["id"] for d in listed["documents"]] == [item["document_id"]]

        again = upload(client, [("copy-of-port-wren.pdf", pdf)], collection="harbours")
        assert again.status_code == 200
        (dup,) = again.json()["items"]
        assert dup == {**dup, "status": "duplicate", "job_id": None, "document_id": item["document_id"]}

        found = client.post(
            "/v1/search", json={"query": "When was the breakwater rebuilt?", "collection": "harbours"}
        ).json()
        top = found["results"][0]
        assert top["document_id"] == item["document_id"] and top["page_start"] <= 2 <= top["page_end"]
        assert top["scores"]["fused"] > 0 and top["scores"]["dense"] is not None

        assert client.delete(f"/v1/documents/{item['document_id']}").status_code == 204
        assert client.get(f"/v1/documents/{item['document_id']}").status_code == 404
        gone = client.post(
            "/v1/search", json={"query": "breakwater rebuilt", "collection": "harbours"}
        ).json()
        assert gone["results"] == []
    with live.client(ADMIN_KEY) as admin:
        stats = admin.get("/v1/admin/stats").json()["index"]["collections"]
        assert all(c["consistent"] for c in stats.values()), stats


def test_several_files_in_one_upload(live: LiveServer) -> None:
    files = [
        (f"note-{i}.txt", f"Note {i}: the {w} lantern was lit at dusk.".encode())
        for i, w in enumerate(["red", "green", "blue"])
    ]
    files.append(("note-0-again.txt", files[0][1]))  # same bytes twice: one job
    with live.client(ALPHA_KEY) as client:
        resp = upload(client, files, collection="notes")
        assert resp.status_code == 202
        items = resp.json()["items"]
        assert len(items) == 4 and items[0]["job_id"] == items[3]["job_id"]
        assert len({i["job_id"] for i in items}) == 3
        for item in items[:3]:
            assert wait_job(client, item["job_id"])["state"] == "succeeded"
        assert client.get("/v1/documents", params={"collection": "notes"}).json()["total"] == 3


def test_answer_cites_document_page_and_snippet(live: LiveServer, samples_indexed: dict) -> None:
    with live.client(ALPHA_KEY) as client:
        resp = client.post("/v1/query", json={"question": FRESNEL_QUESTION})
        assert resp.status_code == 200, resp.text
        answer = resp.json()
    assert not answer["abstained"] and "Fresnel" in answer["answer"]
    pdf_id = samples_indexed["lighthouses.pdf"]["id"]
    cited = [c for c in answer["citations"] if c["document_id"] == pdf_id]
    assert cited, answer["citations"]
    assert cited[0]["document_name"] == "lighthouses.pdf" and 2 in cited[0]["pages"]
    assert "Fresnel" in cited[0]["snippet"]
    assert {"input_tokens", "output_tokens", "cost"} <= set(answer["usage"])
    assert answer["timings"]["total"] > 0 and "cached" in answer


def test_streamed_answer_is_deltas_then_one_final_event(live: LiveServer, samples_indexed: dict) -> None:
    with (
        live.client(ALPHA_KEY) as client,
        client.stream(
            "POST", "/v1/query", json={"question": FRESNEL_QUESTION, "stream": True, "bypass_cache": True}
        ) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(resp.read().decode())
    names = [name for name, _ in events]
    assert names[-1] == "answer" and names.count("answer") == 1
    assert names[:-1] and set(names[:-1]) == {"delta"}
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    final = events[-1][1]
    assert "Fresnel" in streamed
    assert final["citations"] and final["citations"][0]["document_name"] == "lighthouses.pdf"
    assert final["usage"] and final["timings"]["total"] > 0


def test_question_outside_the_documents_abstains(live: LiveServer, samples_indexed: dict) -> None:
    with live.client(ALPHA_KEY) as client:
        answer = client.post(
            "/v1/query",
            json={"question": "What is the boiling point of liquid nitrogen?", "collection": "empty"},
        ).json()
    assert answer["abstained"] and answer["citations"] == []


def test_request_id_is_echoed_and_metrics_use_route_templates(live: LiveServer) -> None:
    with live.client(ALPHA_KEY) as client:
        resp = client.get("/v1/jobs/does-not-exist", headers={"X-Request-ID": "test-request-0001"})
        assert resp.headers["x-request-id"] == "test-request-0001"
        assert resp.json()["request_id"] == "test-request-0001"
        assert client.get("/healthz").json()["status"] == "ok"
    # every tenant's activity: the admin key's, not a tenant's, and not anyone's
    assert_problem(httpx.get(live.url + "/metrics"), 401, "unauthorized")
    with live.client(ALPHA_KEY) as client:
        assert_problem(client.get("/metrics"), 403, "forbidden")
        assert client.get("/readyz").json() == {"ready": True, "checks": None}
    with live.client(ADMIN_KEY) as admin:
        metrics = admin.get("/metrics").text
        assert admin.get("/readyz").json()["checks"]
    assert 'rag_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="404"}' in metrics
    assert "does-not-exist" not in metrics
    assert re.search(r'rag_ingest_jobs\{state="succeeded"\} [1-9]', metrics)


def test_a_running_job_is_cancelled_by_its_owner_only(live: LiveServer) -> None:
    ledger = make_pdf(
        [f"Ledger page {n}. The north orchard sold {n * 11} crates to buyer {n}." for n in range(150)]
    )
    with live.client(ALPHA_KEY) as alpha, live.client(BETA_KEY) as beta:
        (item,) = upload(alpha, [("ledger.pdf", ledger)], collection="cancel").json()["items"]
        job_id = item["job_id"]
        deadline = time.monotonic() + 60
        while alpha.get(f"/v1/jobs/{job_id}").json()["state"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert_problem(beta.delete(f"/v1/jobs/{job_id}"), 404, "not_found")  # another tenant's id
        resp = alpha.delete(f"/v1/jobs/{job_id}")
        assert resp.status_code == 202, resp.text
        job = wait_job(alpha, job_id, timeout=30)
        assert job["state"] == "failed" and job["error"]["code"] == "cancelled"
        assert job["attempts"] == 1  # a cancelled job is not retried
        listed = alpha.get("/v1/documents", params={"collection": "cancel"}).json()["documents"]
        assert all(d["state"] != "indexed" for d in listed)  # nothing of it was indexed
        assert_problem(alpha.delete(f"/v1/jobs/{job_id}"), 409, "conflict")  # it has ended


def test_deleting_a_document_whose_job_runs_cancels_the_job_then_deletes(live: LiveServer) -> None:
    ledger = make_pdf(
        [f"Barn page {n}. The south barn stored {n * 13} bales for farmer {n}." for n in range(150)]
    )
    with live.client(ALPHA_KEY) as alpha, live.client(BETA_KEY) as beta:
        (item,) = upload(alpha, [("barn.pdf", ledger)], collection="deleting").json()["items"]
        job_id, doc_id = item["job_id"], item["document_id"]
        deadline = time.monotonic() + 60
        while alpha.get(f"/v1/jobs/{job_id}").json()["state"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert_problem(beta.delete(f"/v1/documents/{doc_id}"), 404, "not_found")  # another tenant's id
        started = time.monotonic()
        resp = alpha.delete(f"/v1/documents/{doc_id}")
        assert resp.status_code == 204, resp.text
        assert time.monotonic() - started < 15  # promptly: at the next page, not at the job's end
        job = alpha.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] in ("failed", "succeeded"), job  # ended before the 204
        listed = alpha.get("/v1/documents", params={"collection": "deleting"}).json()["documents"]
        assert all(d["state"] != "indexed" for d in listed)  # and nothing of it stays indexed
        found = alpha.post(
            "/v1/query",
            json={"question": "How many bales did the south barn store?", "collection": "deleting"},
        )
        assert found.status_code in (200, 404), found.text
        if found.status_code == 200:
            assert found.json()["citations"] == []
