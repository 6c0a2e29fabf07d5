"""The ``Reranker`` contract the answer pipeline depends on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Reranker(Protocol):
    """Scores passages against a query; higher is more relevant.

    ``available`` is decided once at start-up and ``reason`` says why not, so ``rag doctor``
    and every answer can report it. ``score`` raises ``RerankerUnavailable`` when it cannot
    score this query; callers then keep the fused order.
    """

    name: str
    available: bool
    reason: str | None

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...
