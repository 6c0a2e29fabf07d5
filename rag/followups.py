"""Follow-up questions made standalone before retrieval ("And in 2022?" -> "Adobe revenue in 2022?").

CONTRACT (stub; the implementation replaces the bodies, not the names or signatures):
- ``Turn``: one earlier exchange of the conversation (oldest first in a history).
- ``Rewrite``: what retrieval will search for, and how it came to be.
- ``FollowupRewriter``: the extension point (Protocol); ``OfflineRewriter`` and ``LlmRewriter``
  implement it; ``make_rewriter(settings, gateway)`` picks one at start-up.
A question that stands alone comes back unchanged with ``rewritten=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

RewriteMethod = Literal["none", "offline", "llm"]


@dataclass(frozen=True, slots=True)
class Turn:
    question: str
    answer: str = ""
    retrieval_query: str | None = None
    """The standalone query the turn was retrieved with (its own question when not rewritten)."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    query: str
    rewritten: bool
    method: RewriteMethod
    reason: str = ""


class FollowupRewriter(Protocol):
    async def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite: ...


class OfflineRewriter:
    async def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite:
        return Rewrite(question, False, "none")
