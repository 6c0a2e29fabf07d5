"""Request and response bodies of the HTTP API (the answer and search shapes come from ``rag.answer``)."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.answer import Answer
from rag.errors import InvalidRequest

Scalar = str | int | float | bool
FilterValue = Scalar | list[Scalar]

_META_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_METADATA_KEYS = 32
MAX_METADATA_VALUE_CHARS = 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryRequest(_Strict):
    question: str = Field(min_length=1, description="the question; its length is limited by the server")
    collection: str | None = Field(default=None, description="one of your collections (default: 'default')")
    filters: dict[str, FilterValue] | None = Field(
        default=None, description="equality filters on document metadata; 'document_id' may be a list"
    )
    top_k: int | None = Field(default=None, ge=1, description="sources to use; bounded by the server")
    stream: bool = Field(default=False, description="answer with Server-Sent Events")
    bypass_cache: bool = False
    conversation_id: str | None = Field(
        default=None,
        max_length=64,
        description="ask inside this conversation: a follow-up is made standalone from its recent turns",
    )


class SearchRequest(_Strict):
    query: str = Field(min_length=1)
    collection: str | None = None
    filters: dict[str, FilterValue] | None = None
    top_k: int | None = Field(default=None, ge=1)


class ConversationCreate(_Strict):
    collection: str | None = Field(default=None, description="the collection it asks (default: 'default')")
    title: str | None = Field(default=None, max_length=200, description="default: its first question")


class ConversationOut(BaseModel):
    id: str
    collection: str
    title: str
    created_at: float
    updated_at: float


class ConversationList(BaseModel):
    conversations: list[ConversationOut]
    total: int


class ConversationDetail(ConversationOut):
    turns: list[Answer] = Field(description="the answers given in it, oldest first, exactly as returned")


class FeedbackCreate(_Strict):
    rating: Literal["up", "down"]
    comment: str = Field(default="", max_length=2000)


class FeedbackOut(BaseModel):
    id: str
    answer_id: str
    rating: Literal["up", "down"]
    comment: str


class UploadItem(BaseModel):
    filename: str
    document_id: str
    job_id: str | None = Field(description="null when the content was already indexed (no job started)")
    status: Literal["queued", "running", "duplicate"]
    collection: str
    size_bytes: int


class UploadAccepted(BaseModel):
    items: list[UploadItem]


class JobError(BaseModel):
    code: str
    message: str


class JobProgress(BaseModel):
    model_config = ConfigDict(extra="allow")

    stage: str = "queued"
    pages_total: int = 0
    pages_read: int = 0
    ocr_pages: int = 0
    chunks_embedded: int = 0


class JobOut(BaseModel):
    id: str
    document_id: str
    name: str
    collection: str
    state: Literal["queued", "running", "succeeded", "failed"]
    attempts: int
    progress: JobProgress
    result: dict[str, Any] | None = None
    error: JobError | None = None
    timings: dict[str, float] = Field(description="seconds: queued, running, total")
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


class DocumentOut(BaseModel):
    id: str
    name: str
    collection: str
    kind: str | None = None
    size_bytes: int | None = None
    pages: int = 0
    ocr_pages: int = 0
    chunks: int = 0
    state: Literal["indexed", "indexing", "queued", "failed"]
    created_at: float
    metadata: dict[str, Any] = Field(default_factory=dict)
    job_id: str | None = None
    error: JobError | None = None


class DocumentList(BaseModel):
    documents: list[DocumentOut]
    total: int


class HighlightRect(BaseModel):
    """A rectangle on the page as fractions of its width and height, origin top-left."""

    x0: float
    y0: float
    x1: float
    y1: float


class PageLayoutOut(BaseModel):
    document_id: str
    page: int
    width: float = Field(description="the displayed page's width: points for PDFs, pixels for images")
    height: float
    source: str = Field(description="text-layer, ocr or text: how the page's text was read")
    words: int = Field(description="words whose boxes are known on this page")
    highlight: list[HighlightRect] = Field(
        description="the passage's lines, each a rectangle covering its words (empty without a passage)"
    )
    text: str | None = Field(default=None, description="the highlighted passage as the page text states it")


class Health(BaseModel):
    status: Literal["ok"]
    uptime_s: float


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Any] | None = None
    """Each part's state, for the admin key only: it shows every tenant's activity."""


def parse_metadata(raw: str | None) -> dict[str, Any]:
    """The ``metadata`` form field: a flat JSON object of scalars, small enough to filter on."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidRequest("metadata: must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata: must be a JSON object")
    if len(value) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata: at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not _META_KEY.fullmatch(key):
            raise InvalidRequest(f"metadata: invalid key {key[:70]!r} (1-64 letters, digits, '.', '_', '-')")
        if key == "document_id":
            raise InvalidRequest("metadata: 'document_id' is reserved")
        if not isinstance(item, str | int | float | bool) or (
            isinstance(item, float) and not math.isfinite(item)
        ):
            raise InvalidRequest(f"metadata: {key} must be a string, number or boolean")
        if isinstance(item, str) and len(item) > MAX_METADATA_VALUE_CHARS:
            raise InvalidRequest(f"metadata: {key} is longer than {MAX_METADATA_VALUE_CHARS} characters")
    return value


__all__ = [
    "ConversationCreate",
    "ConversationDetail",
    "ConversationList",
    "ConversationOut",
    "DocumentList",
    "DocumentOut",
    "FeedbackCreate",
    "FeedbackOut",
    "Health",
    "JobOut",
    "QueryRequest",
    "Readiness",
    "SearchRequest",
    "UploadAccepted",
    "UploadItem",
    "parse_metadata",
]
