"""Small builders shared by the gateway tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.llm.gateway import Gateway
from rag.llm.types import LLMRequest, Message, SourceRef
from tests.fakes.llm_server import FakeLLMServer

FAST = {
    "llm_backoff_base_s": 0.02,
    "llm_backoff_max_s": 0.1,
    "llm_connect_timeout_s": 2.0,
    "llm_read_timeout_s": 5.0,
    "llm_total_timeout_s": 5.0,
    "llm_stream_idle_timeout_s": 5.0,
    "llm_deadline_s": 10.0,
    "cache_enabled": False,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers, booleans and lists read the same in TOML


def write_toml(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def openai_entry(server: FakeLLMServer, model: str = "fake-model", **extra: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": server.openai_url, "model": model, **extra}


def anthropic_entry(server: FakeLLMServer, model: str = "claude-fake", **extra: Any) -> dict[str, Any]:
    return {"type": "anthropic", "base_url": server.anthropic_url, "model": model, **extra}


def source(n: int, text: str, sha: str | None = None, chunk_id: str | None = None) -> SourceRef:
    return SourceRef(
        n=n,
        chunk_id=chunk_id or f"chunk-{n}",
        document_id=f"doc-{n}",
        document_name=f"doc-{n}.txt",
        content_sha256=sha or f"sha-{n}",
        pages=[1],
        text=text,
    )


def ask(
    question: str = "Where is the Eiffel Tower?", *, sources: list[SourceRef] | None = None, **kw: Any
) -> LLMRequest:
    srcs = sources if sources is not None else [source(1, "The Eiffel Tower is in Paris.")]
    context = "\n".join(f"[{s.n}] {s.text}" for s in srcs)
    messages = [
        Message(role="system", content="Answer from the sources and cite them as [n]."),
        Message(role="user", content=f"Sources:\n{context}\n\nQuestion: {question}"),
    ]
    return LLMRequest(messages=messages, question=question, sources=srcs, **kw)


class ManualClock:
    """Time that moves only when a test moves it; both readings (monotonic and wall) move together."""

    def __init__(self, start: float = 1000.0, epoch: float = 1_700_000_000.0) -> None:
        self.now = start
        self.epoch = epoch

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    value = gateway.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
