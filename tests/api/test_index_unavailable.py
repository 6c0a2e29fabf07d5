"""A Chroma server that goes away mid-service: queries answer 503 ``index_unavailable``, never 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import ALPHA_KEY, LiveServer, assert_problem, upload, wait_job
from tests.chroma_server import ChromaServer

pytestmark = pytest.mark.slow

TEXT = (
    b"The Port of Kelby handled 4.2 million containers in 2022.\n\n"
    b"A new crane terminal opened at Kelby in March 2023; it cost 310 million euros.\n"
)


def test_a_killed_chroma_server_answers_503_index_unavailable(tmp_path: Path) -> None:
    with ChromaServer(tmp_path / "chroma") as chroma:
        server = LiveServer(
            tmp_path / "var",
            {"RAG_API_KEYS": f"{ALPHA_KEY}:alpha", "RAG_CHROMA_URL": chroma.url},
            name="chroma-client",
        )
        server.start()
        try:
            with server.client(ALPHA_KEY) as client:
                resp = upload(client, [("harbor.txt", TEXT)])
                assert resp.status_code == 202, resp.text
                (item,) = resp.json()["items"]
                assert wait_job(client, item["job_id"])["state"] == "succeeded"
                asked = client.post("/v1/query", json={"question": "How many containers did Kelby handle?"})
                assert asked.status_code == 200, asked.text
                assert not asked.json()["abstained"]

                chroma.kill()

                for path, body in (
                    ("/v1/query", {"question": "What did the crane terminal cost?"}),
                    ("/v1/query", {"question": "When did the terminal open?", "stream": True}),
                    ("/v1/search", {"query": "crane terminal"}),
                ):
                    problem = assert_problem(client.post(path, json=body), 503, "index_unavailable")
                    assert "Chroma" in problem["detail"], problem
            assert "Traceback" not in server.log_text()
        finally:
            server.stop()
