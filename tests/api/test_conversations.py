"""Conversations, follow-ups, feedback and the OpenAI-compatible chat, against a real server.

The chat endpoint is driven with the official ``openai`` SDK, unmodified, streaming and not.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai import NotFoundError, OpenAI

from tests.api.conftest import (
    ADMIN_KEY,
    ALPHA_KEY,
    BETA_KEY,
    LiveServer,
    assert_problem,
    upload,
    wait_job,
)
from tests.api.test_mcp import payload, with_session

pytestmark = pytest.mark.slow

FRESNEL = "Who presented a new kind of lens for lighthouses in 1822?"
NORMANS = "Who were the Normans descended from?"
FOLLOW_UP = "Who was their leader?"


def _sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((lines.get("event", ""), json.loads(lines["data"])))
    return events


def _openai(live: LiveServer, key: str = ALPHA_KEY) -> OpenAI:
    return OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0, timeout=60)


def test_a_conversation_keeps_its_turns_and_rewrites_follow_ups(
    live: LiveServer, samples_indexed: dict
) -> None:
    with live.client(ALPHA_KEY) as client:
        created = client.post("/v1/conversations", json={})
        assert created.status_code == 201, created.text
        conversation = created.json()
        assert conversation["collection"] == "default"
        cid = conversation["id"]

        first = client.post("/v1/query", json={"question": NORMANS, "conversation_id": cid}).json()
        assert first["conversation_id"] == cid and first["id"]
        assert first["retrieval_query"] == NORMANS and first["rewrite_method"] == "none"
        second = client.post("/v1/query", json={"question": FOLLOW_UP, "conversation_id": cid}).json()
        assert second["question"] == FOLLOW_UP
        assert second["rewrite_method"] == "offline", second
        assert "Norman" in second["retrieval_query"], second["retrieval_query"]
        assert second["citations"] and second["citations"][0]["document_name"] == "normans.md"
        # the same follow-up outside the conversation is not rewritten
        alone = client.post("/v1/query", json={"question": FOLLOW_UP}).json()
        assert alone["retrieval_query"] == FOLLOW_UP and alone["rewrite_method"] == "none"

        shown = client.get(f"/v1/conversations/{cid}").json()
        assert shown["title"] == NORMANS
        assert [t["id"] for t in shown["turns"]] == [first["id"], second["id"]]
        assert shown["turns"][1]["citations"] == second["citations"]
        assert client.get(f"/v1/answers/{second['id']}").json() == second

        listed = client.get("/v1/conversations").json()
        assert cid in [c["id"] for c in listed["conversations"]] and listed["total"] >= 1

        assert client.delete(f"/v1/conversations/{cid}").status_code == 204
        assert_problem(client.get(f"/v1/conversations/{cid}"), 404, "not_found")
        assert_problem(client.get(f"/v1/answers/{second['id']}"), 404, "not_found")
        assert_problem(
            client.post("/v1/query", json={"question": FOLLOW_UP, "conversation_id": cid}), 404, "not_found"
        )


def test_another_tenant_sees_none_of_it(live: LiveServer, samples_indexed: dict) -> None:
    with live.client(ALPHA_KEY) as alpha, live.client(BETA_KEY) as beta:
        cid = alpha.post("/v1/conversations", json={"title": "mine"}).json()["id"]
        answer = alpha.post("/v1/query", json={"question": FRESNEL, "conversation_id": cid}).json()
        for resp in (
            beta.get(f"/v1/conversations/{cid}"),
            beta.delete(f"/v1/conversations/{cid}"),
            beta.get(f"/v1/answers/{answer['id']}"),
            beta.post(f"/v1/answers/{answer['id']}/feedback", json={"rating": "down"}),
            beta.post("/v1/query", json={"question": FRESNEL, "conversation_id": cid}),
            beta.post(
                "/v1/chat/completions",
                json={
                    "model": "default",
                    "messages": [{"role": "user", "content": FRESNEL}],
                    "conversation_id": cid,
                },
            ),
        ):
            assert_problem(resp, 404, "not_found")
        assert cid not in [c["id"] for c in beta.get("/v1/conversations").json()["conversations"]]
        assert alpha.get(f"/v1/conversations/{cid}").status_code == 200
        # a collection is a model only for its tenant
        job = upload(alpha, [("memo.txt", b"The alpha-only memo says the vault code is blue.")], "alpha-only")
        assert wait_job(alpha, job.json()["items"][0]["job_id"])["state"] == "succeeded"
        assert "alpha-only" in [m["id"] for m in alpha.get("/v1/models").json()["data"]]
        assert "alpha-only" not in [m["id"] for m in beta.get("/v1/models").json()["data"]]
        chat = {"model": "alpha-only", "messages": [{"role": "user", "content": "What is the vault code?"}]}
        assert_problem(beta.post("/v1/chat/completions", json=chat), 404, "not_found")
        assert alpha.post("/v1/chat/completions", json=chat).status_code == 200


def test_feedback_is_stored_and_counted(live: LiveServer, samples_indexed: dict) -> None:
    with live.client(ALPHA_KEY) as client, live.client(ADMIN_KEY) as admin:
        answer = client.post("/v1/query", json={"question": FRESNEL}).json()
        up = client.post(f"/v1/answers/{answer['id']}/feedback", json={"rating": "up", "comment": " exact "})
        assert up.status_code == 201, up.text
        assert up.json()["rating"] == "up" and up.json()["comment"] == "exact"
        metrics = admin.get("/metrics").text
        assert 'rag_answer_feedback_total{rating="up"}' in metrics
        assert_problem(
            client.post(f"/v1/answers/{answer['id']}/feedback", json={"rating": "sideways"}),
            422,
            "invalid_request",
        )
        assert_problem(client.post("/v1/answers/ans_nope/feedback", json={"rating": "up"}), 404, "not_found")
        assert_problem(client.post("/v1/conversations", json={"collection": "../x"}), 422, "invalid_request")


def test_the_openai_sdk_gets_cited_answers(live: LiveServer, samples_indexed: dict) -> None:
    client = _openai(live)
    models = [m.id for m in client.models.list()]
    assert models[0] == "default"

    reply = client.chat.completions.create(model="default", messages=[{"role": "user", "content": FRESNEL}])
    message = reply.choices[0].message
    assert "Fresnel" in (message.content or "") and "[1]" in (message.content or "")
    extra = message.model_extra or {}
    assert extra["citations"][0]["document_name"] == "lighthouses.pdf"
    assert reply.usage is not None and reply.choices[0].finish_reason == "stop"

    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": FRESNEL}])


def test_the_openai_sdk_streams_and_rewrites_follow_ups(live: LiveServer, samples_indexed: dict) -> None:
    client = _openai(live)
    first = client.chat.completions.create(model="default", messages=[{"role": "user", "content": NORMANS}])
    history = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": NORMANS},
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": FOLLOW_UP},
    ]
    stream = client.chat.completions.create(
        model="default", messages=history, stream=True, stream_options={"include_usage": True}
    )
    text, last, ids = "", None, set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.choices and chunk.choices[0].finish_reason == "stop":
            last = chunk
    assert last is not None and len(ids) == 1
    extra = last.model_extra or {}
    assert extra["rag"]["rewrite_method"] == "offline"
    assert "Norman" in extra["rag"]["retrieval_query"]
    assert extra["citations"] and extra["citations"][0]["document_name"] == "normans.md"
    assert text.strip()


def test_one_citation_object_on_every_surface(live: LiveServer, samples_indexed: dict) -> None:
    """One question through /v1/query, its stream, chat (both ways), MCP and the history: same citations."""
    with live.client(ALPHA_KEY) as client:
        cid = client.post("/v1/conversations", json={}).json()["id"]
        plain = client.post("/v1/query", json={"question": FRESNEL, "conversation_id": cid}).json()
        streamed = client.post("/v1/query", json={"question": FRESNEL, "stream": True})
        answer_event = next(data for name, data in _sse(streamed.text) if name == "answer")
        chat = client.post(
            "/v1/chat/completions",
            json={"model": "default", "messages": [{"role": "user", "content": FRESNEL}]},
        ).json()
        chat_stream = client.post(
            "/v1/chat/completions",
            json={"model": "default", "messages": [{"role": "user", "content": FRESNEL}], "stream": True},
        )
        chunks = [
            json.loads(line[6:]) for line in chat_stream.text.splitlines() if line.startswith("data: {")
        ]
        history = client.get(f"/v1/conversations/{cid}").json()["turns"][0]

    async def ask(session: Any) -> dict[str, Any]:
        return payload(await session.call_tool("ask", {"question": FRESNEL}))

    mcp = with_session(live, ALPHA_KEY, ask)
    expected = plain["citations"]
    assert expected and expected[0]["char_end"] > expected[0]["char_start"]
    assert answer_event["citations"] == expected
    assert chat["choices"][0]["message"]["citations"] == expected
    assert chunks[-1]["citations"] == expected
    assert history["citations"] == expected
    assert mcp["citations"] == expected


def test_bad_chat_requests_get_problems(live: LiveServer) -> None:
    with live.client(ALPHA_KEY) as client:
        assert_problem(client.post("/v1/chat/completions", json={"model": "default"}), 422, "invalid_request")
        assert_problem(
            client.post(
                "/v1/chat/completions",
                json={"model": "default", "messages": [{"role": "assistant", "content": "hi"}]},
            ),
            422,
            "invalid_request",
        )
        assert_problem(
            client.post("/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}),
            422,
            "invalid_request",
        )
    resp = httpx.post(live.url + "/v1/chat/completions", json={"model": "default", "messages": []})
    assert_problem(resp, 401, "unauthorized")


def test_what_open_webui_sends_is_understood(live: LiveServer, samples_indexed: dict) -> None:
    """Open WebUI's body: content as a list of parts, its own fields beside OpenAI's, a stream."""
    body = {
        "stream": True,
        "model": "default",
        "messages": [{"role": "user", "content": [{"type": "text", "text": FRESNEL}]}],
        "stream_options": {"include_usage": True},
        "temperature": 0.8,
        "max_tokens": 1024,
        "user": {"name": "Ada", "id": "u1", "email": "ada@example.org", "role": "user"},
        "metadata": {"chat_id": "c1", "message_id": "m1", "session_id": "s1"},
    }
    with live.client(ALPHA_KEY) as client:
        resp = client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in resp.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "Fresnel" in text
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] >= 0
    assert chunks[-2]["citations"][0]["document_name"] == "lighthouses.pdf"


def test_mcp_asks_inside_a_conversation_of_its_tenant_only(live: LiveServer, samples_indexed: dict) -> None:
    with live.client(ALPHA_KEY) as client:
        cid = client.post("/v1/conversations", json={}).json()["id"]
        client.post("/v1/query", json={"question": NORMANS, "conversation_id": cid})

    async def follow_up(session: Any) -> Any:
        return await session.call_tool("ask", {"question": FOLLOW_UP, "conversation_id": cid})

    answer = payload(with_session(live, ALPHA_KEY, follow_up))
    assert answer["conversation_id"] == cid and answer["rewrite_method"] == "offline"
    assert "Norman" in answer["retrieval_query"]
    refused = with_session(live, BETA_KEY, follow_up)
    assert refused.is_error and refused.structured_content["code"] == "not_found"
    with live.client(ALPHA_KEY) as client:
        turns = client.get(f"/v1/conversations/{cid}").json()["turns"]
    assert [t["question"] for t in turns] == [NORMANS, FOLLOW_UP] and turns[1]["id"] == answer["id"]
