"""A tenant's key reaches only its own documents, on every endpoint; other ids look nonexistent."""

from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN_KEY, ALPHA_KEY, BETA_KEY, LiveServer, assert_problem, upload, wait_job

pytestmark = pytest.mark.slow

SECRET = b"Memo for the lighthouse board. The storeroom codeword of the north tower is PELICAN-SEVEN."


@pytest.fixture(scope="module")
def alpha_secret(live: LiveServer) -> dict:
    """Alpha's private document in collection 'private', indexed."""
    with live.client(ALPHA_KEY) as client:
        (item,) = upload(client, [("memo.txt", SECRET)], collection="private").json()["items"]
        assert wait_job(client, item["job_id"])["state"] == "succeeded"
    return item


def test_other_tenant_cannot_see_read_or_delete_the_document(live: LiveServer, alpha_secret: dict) -> None:
    doc_id, job_id = alpha_secret["document_id"], alpha_secret["job_id"]
    with live.client(BETA_KEY) as beta:
        assert_problem(beta.get(f"/v1/documents/{doc_id}"), 404, "not_found")
        assert_problem(beta.delete(f"/v1/documents/{doc_id}"), 404, "not_found")
        assert_problem(beta.get(f"/v1/jobs/{job_id}"), 404, "not_found")
        for params in ({}, {"collection": "private"}):
            listed = beta.get("/v1/documents", params=params).json()["documents"]
            assert doc_id not in {d["id"] for d in listed}
    with live.client(ALPHA_KEY) as alpha:  # the owner still has it: beta's delete did nothing
        assert alpha.get(f"/v1/documents/{doc_id}").json()["state"] == "indexed"
        assert alpha.get(f"/v1/jobs/{job_id}").status_code == 200


def test_other_tenant_cannot_search_or_ask_over_the_document(live: LiveServer, alpha_secret: dict) -> None:
    question = "What is the storeroom codeword of the north tower?"
    with live.client(ALPHA_KEY) as alpha:  # the question does find it for its owner
        own = alpha.post("/v1/query", json={"question": question, "collection": "private"}).json()
        assert "PELICAN" in own["answer"]
    with live.client(BETA_KEY) as beta:
        hits = beta.post("/v1/search", json={"query": question, "collection": "private"}).json()["results"]
        assert all(h["document_id"] != alpha_secret["document_id"] for h in hits) and hits == []
        answer = beta.post("/v1/query", json={"question": question, "collection": "private"}).json()
        assert answer["abstained"] and "PELICAN" not in answer["answer"] and answer["citations"] == []
        filtered = beta.post(
            "/v1/query",
            json={"question": question, "filters": {"document_id": alpha_secret["document_id"]}},
        ).json()
        assert "PELICAN" not in filtered["answer"]
        with beta.stream(
            "POST", "/v1/query", json={"question": question, "collection": "private", "stream": True}
        ) as resp:
            assert "PELICAN" not in resp.read().decode()


def test_same_bytes_in_another_tenant_are_a_separate_document(live: LiveServer, alpha_secret: dict) -> None:
    with live.client(BETA_KEY) as beta:
        resp = upload(beta, [("memo.txt", SECRET)], collection="private")
        assert resp.status_code == 202  # not "duplicate": alpha's copy is invisible to beta
        (item,) = resp.json()["items"]
        assert item["document_id"] != alpha_secret["document_id"] and item["job_id"]
        assert wait_job(beta, item["job_id"])["state"] == "succeeded"
        assert beta.delete(f"/v1/documents/{item['document_id']}").status_code == 204
    with live.client(ALPHA_KEY) as alpha:
        assert alpha.get(f"/v1/documents/{alpha_secret['document_id']}").status_code == 200


def test_keys_and_roles(live: LiveServer) -> None:
    assert_problem(live.client().get("/v1/documents"), 401, "unauthorized")
    assert_problem(live.client("not-a-key-of-anyone-at-all").get("/v1/documents"), 401, "unauthorized")
    with live.client(ALPHA_KEY) as alpha:
        assert_problem(alpha.get("/v1/admin/stats"), 403, "forbidden")
    with live.client(ADMIN_KEY) as admin:
        assert_problem(admin.get("/v1/documents"), 403, "forbidden")
        assert_problem(admin.post("/v1/query", json={"question": "anything"}), 403, "forbidden")
        collections = admin.get("/v1/admin/stats").json()["index"]["collections"]
        assert {"alpha::private", "alpha::default", "beta::default"} <= set(collections)
        jobs = admin.get("/v1/admin/jobs", params={"state": "succeeded"}).json()
        assert jobs and all(j["state"] == "succeeded" for j in jobs)
