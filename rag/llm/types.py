"""Requests and responses that cross the gateway, independent of any vendor's format."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class SourceRef(BaseModel):
    """A labelled source in the context; its hash keys the cache so edits invalidate answers."""

    n: int
    chunk_id: str
    document_id: str
    document_name: str
    content_sha256: str
    pages: list[int]
    text: str
    score: float = 0.0
    char_start: int = 0
    char_end: int = 0
    """Where ``text`` sits in the document's text (pages joined by ``PAGE_SEPARATOR``)."""
    exact: bool = False
    """``text`` is exactly the document's text between the offsets (a table piece with its
    repeated header is not): only then can a quote's own offsets be computed from it."""


class LLMRequest(BaseModel):
    messages: list[Message]
    max_tokens: int = 512
    temperature: float = 0.0
    json_mode: bool = False
    prompt_id: str = ""
    prompt_version: str = ""
    question: str = ""
    sources: list[SourceRef] = Field(default_factory=list)
    bypass_cache: bool = False
    api_key_id: str | None = None
    model: str | None = None


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    cost: float = 0.0


class LLMResponse(BaseModel):
    text: str
    provider: str
    model: str
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    cached: bool = False
    latency_ms: float = 0.0
    attempts: int = 1
    fallbacks: list[str] = Field(default_factory=list)


class StreamDelta(BaseModel):
    """A piece of streamed text; the last event has ``done=True`` and the full response."""

    text: str = ""
    done: bool = False
    response: LLMResponse | None = None
