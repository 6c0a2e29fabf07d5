"""The re-rankers that do not re-rank: switched off, or configured but not loadable."""

from __future__ import annotations

from collections.abc import Sequence

from rag.errors import RerankerUnavailable


class NoReranker:
    """``RAG_RERANKER=none``: the fused order stands."""

    name = "none"
    available = False
    reason: str | None = "no re-ranker configured"

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        raise RerankerUnavailable(self.reason)


class UnavailableReranker:
    """A configured re-ranker that could not be built; it carries the reason to report."""

    available = False

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason: str | None = reason

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        raise RerankerUnavailable(f"re-ranker {self.name} is unavailable: {self.reason}")
