"""What callers get back from the query pipeline: the answer object, search results and their parts.

These are the service's response shapes (the HTTP API, ``rag ask --json`` and ``rag eval`` all use
them as they are), so a field added here is a field added to the public API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from rag.citations import Citation
from rag.prompts import PROMPT_ID, PROMPT_VERSION

__all__ = [
    "Answer",
    "AnswerType",
    "PromptInfo",
    "RerankerInfo",
    "RetrievalInfo",
    "Scores",
    "SearchHit",
    "SearchResult",
    "StreamEvent",
    "UsageInfo",
]


class Scores(BaseModel):
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense: float | None = None
    lexical: float | None = None
    fused: float
    rerank: float | None = None


class SearchHit(BaseModel):
    chunk_id: str
    document_id: str
    document_name: str
    page_start: int
    page_end: int
    text: str
    scores: Scores


class RerankerInfo(BaseModel):
    name: str
    available: bool
    used: bool = False
    reason: str | None = None


class SearchResult(BaseModel):
    results: list[SearchHit]
    candidates: int
    reranker: RerankerInfo
    timings: dict[str, float]


class UsageInfo(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    estimated: bool = False


class PromptInfo(BaseModel):
    id: str = PROMPT_ID
    version: str = PROMPT_VERSION


class RetrievalInfo(BaseModel):
    candidates: int = 0
    """Chunks either retriever returned (after fusion, before any cut)."""
    after_floor: int = 0
    floor: float | None = None
    floor_on: Literal["rerank", "fused"] | None = None
    """Which score the floor was applied to; ``None`` when it was not applied."""
    top_dense: float | None = None
    """The best dense cosine similarity, compared with ``dense_floor``."""
    sources: int = 0
    packed_tokens: int = 0
    budget: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)


AnswerType = Literal["answer", "evidence", "abstained"]


class Answer(BaseModel):
    id: str | None = None
    """The stored answer's id (for history and ``/v1/answers/{id}/feedback``); ``None`` outside the service."""
    conversation_id: str | None = None
    question: str = ""
    """The question as asked."""
    retrieval_query: str = ""
    """What retrieval searched for: the question, or its standalone rewrite when it referred back."""
    rewrite_method: Literal["none", "offline", "llm"] = "none"
    """How a follow-up was made standalone (``none``: it was not rewritten)."""
    answer: str
    abstained: bool
    answer_type: AnswerType = "answer"
    """What ``answer`` is. ``"answer"``: it states the answer, with citations. ``"evidence"``: the
    documents hold what the answer is worked out from but do not state it (a ratio to compute from
    a balance sheet): ``answer`` says so (``rag.llm.schema.EVIDENCE_SENTENCE``) and quotes the
    best evidence with its citations, checked like any others; only the offline extractive
    answerer gives these, an LLM works the answer out. ``"abstained"``: exactly when ``abstained``
    is true (``answer`` is "The documents do not say.")."""
    citations: list[Citation] = Field(default_factory=list)
    provider: str = "none"
    model: str = ""
    cached: bool = False
    usage: UsageInfo = Field(default_factory=UsageInfo)
    timings: dict[str, float] = Field(default_factory=dict)
    prompt: PromptInfo = Field(default_factory=PromptInfo)
    reranker: RerankerInfo
    retrieval: RetrievalInfo = Field(default_factory=RetrievalInfo)
    dropped_citations: int = 0
    uncited: bool = False
    abstention_reason: Literal["no_relevant_sources", "model"] | None = None
    json_valid: bool | None = None

    @model_validator(mode="after")
    def _type_agrees_with_abstained(self) -> Answer:
        if self.abstained:
            self.answer_type = "abstained"
        elif self.answer_type == "abstained":
            raise ValueError('answer_type is "abstained" but abstained is false')
        return self


class StreamEvent(BaseModel):
    """``delta`` events carry text as the model writes it; the last event is the checked ``answer``."""

    type: Literal["delta", "answer"]
    text: str = ""
    answer: Answer | None = None
