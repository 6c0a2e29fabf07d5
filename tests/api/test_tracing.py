"""Traces: a real server with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set exports to a fake OTLP collector."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.api.conftest import ALPHA_KEY, KEYS, SAMPLES, LiveServer
from tests.fakes.otlp_collector import OtlpCollector, ReceivedSpan

pytestmark = pytest.mark.slow

QUESTION = "Who presented a new kind of lens for lighthouses in 1822?"
QUERY_STAGES = ["embed", "dense", "lexical", "fuse", "fetch", "pack", "llm"]
INGEST_STAGES = {"read", "chunk", "embed", "write"}


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, OtlpCollector]]:
    with OtlpCollector() as collector:
        server = LiveServer(
            tmp_path_factory.mktemp("traced") / "var",
            {
                "RAG_API_KEYS": KEYS,
                "RAG_SAMPLES_DIR": str(SAMPLES),
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_SERVICE_NAME": "rag-under-test",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            },
            name="traced",
        )
        server.start()
        try:
            yield server, collector
        finally:
            server.stop()


def _wait_for(
    collector: OtlpCollector, found: Callable[[list[ReceivedSpan]], bool], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found(collector.spans()):
            return
        time.sleep(0.2)
    raise AssertionError(f"not exported in {timeout} s: {[s.name for s in collector.spans()]}")


def _trace(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    return sorted((s for s in spans if s.trace_id == root.trace_id), key=lambda s: s.start_ns)


def test_a_query_is_one_trace_with_its_stages_in_order(traced: tuple[LiveServer, OtlpCollector]) -> None:
    server, collector = traced
    with server.client(ALPHA_KEY) as client:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # the sample documents, queued at the first start
            docs = client.get("/v1/documents").json()["documents"]
            if docs and all(d["state"] == "indexed" for d in docs):
                break
            time.sleep(0.3)
        answer = client.post("/v1/query", json={"question": QUESTION})
        assert answer.status_code == 200 and answer.json()["citations"]

    def query_root(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in spans if s.name == "POST /v1/query" and not s.parent_id]

    _wait_for(collector, lambda spans: bool(query_root(spans)) and any(s.name == "llm" for s in spans))
    spans = collector.spans()
    roots = query_root(spans)
    assert len(roots) == 1, [s.name for s in roots]
    root = roots[0]
    trace = _trace(spans, root)
    assert {s.service for s in trace} == {"rag-under-test"}
    stages = [s for s in trace if s.name in QUERY_STAGES]
    assert [s.name for s in stages] == QUERY_STAGES, [s.name for s in trace]
    assert all(s.parent_id == root.span_id for s in stages)
    assert all(root.start_ns <= s.start_ns <= s.end_ns <= root.end_ns for s in stages)
    llm = stages[-1]
    assert llm.attributes["llm.provider"] == "extractive" and llm.attributes["llm.cache_hit"] is False
    attempts = [s for s in trace if s.name == "llm.attempt"]
    assert attempts and all(a.parent_id == llm.span_id for a in attempts)
    assert (
        attempts[0].attributes["llm.provider"] == "extractive" and attempts[0].attributes["llm.attempt"] == 1
    )
    assert "llm.breaker" in attempts[0].attributes


def test_each_ingestion_job_is_a_trace_of_its_stages(traced: tuple[LiveServer, OtlpCollector]) -> None:
    server, collector = traced
    with server.client(ALPHA_KEY) as client:
        resp = client.post(
            "/v1/documents",
            files=[
                (
                    "files",
                    ("memo.txt", b"The traced memo says the harbour light was lit in 1890.", "text/plain"),
                )
            ],
            data={"collection": "traced"},
        )
        document_id = resp.json()["items"][0]["document_id"]

    def ingest_root(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in spans if s.name == "ingest" and s.attributes.get("rag.document_id") == document_id]

    _wait_for(collector, lambda spans: bool(ingest_root(spans)) and "write" in {s.name for s in spans})
    spans = collector.spans()
    root = ingest_root(spans)[0]
    assert not root.parent_id and root.attributes["rag.chunks"] >= 1
    trace = _trace(spans, root)
    children = {s.name for s in trace if s.parent_id == root.span_id}
    assert children >= INGEST_STAGES, children
    write = next(s for s in trace if s.name == "write")
    assert all(s.end_ns <= write.start_ns for s in trace if s.name == "embed")


def test_the_sdk_switch_turns_tracing_off(tmp_path: Path) -> None:
    with OtlpCollector() as collector:
        env = {
            "RAG_API_KEYS": KEYS,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_SDK_DISABLED": "true",
        }
        server = LiveServer(tmp_path / "var", env, name="untraced").start()
        try:
            with server.client(ALPHA_KEY) as client:
                client.post("/v1/search", json={"query": QUESTION})
            time.sleep(1)
        finally:
            server.stop()
        assert collector.exports == 0
