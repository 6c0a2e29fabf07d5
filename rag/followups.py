"""Follow-up questions made standalone before retrieval ("And in 2022?" -> "Adobe revenue in 2022?").

Retrieval sees one query at a time: a follow-up that leans on the conversation ("What did they
spend on R&D?") finds nothing about the company it means. So a follow-up is rewritten into a
standalone query first, and only a follow-up: a question that stands alone is searched as asked.

- ``Turn``: one earlier exchange of the conversation (oldest first in a history).
- ``Rewrite``: what retrieval will search for, and how it came to be.
- ``FollowupRewriter``: the extension point (Protocol); ``OfflineRewriter`` (rules, no model),
  ``LlmRewriter`` (asks the LLM gateway, falls back to the rules) and ``NoRewriter``
  (``RAG_FOLLOWUP_REWRITE=off``) implement it; ``make_rewriter(settings, gateway)`` picks one.

The detector and the offline rules are ``rag.followup_rules``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from rag.citations import CITATION_MARKER
from rag.followup_rules import Reference, Turn, find_reference, refers_back, resolve
from rag.llm.config import load_chain
from rag.llm.schema import ABSTENTION_SENTENCE, EVIDENCE_SENTENCE
from rag.llm.types import LLMRequest, LLMResponse, Message
from rag.logs import log_event
from rag.settings import Settings

logger = logging.getLogger(__name__)

RewriteMethod = Literal["none", "offline", "llm"]

PROMPT_ID = "followup-rewrite"
PROMPT_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Rewrite:
    query: str
    rewritten: bool
    method: RewriteMethod
    reason: str = ""


class FollowupRewriter(Protocol):
    async def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite: ...


class RewriteGateway(Protocol):
    """What the LLM rewriter needs of the gateway (``rag.llm.gateway.Gateway`` is one)."""

    async def complete(self, request: LLMRequest) -> LLMResponse: ...


# --------------------------------------------------------------------------- rewriters


def _recent(history: Sequence[Turn], turns: int) -> list[Turn]:
    usable = [t for t in history if t.query]
    return usable[-turns:] if turns > 0 else []


def _gate(question: str, history: Sequence[Turn], turns: int) -> Rewrite | tuple[Reference, list[Turn]]:
    """What a rewrite works from (the reference and the recent turns), or the unchanged question."""
    reference = find_reference(question)
    if reference is None:
        return Rewrite(question, False, "none")
    recent = _recent(history, turns)
    if not recent:
        return Rewrite(question, False, "none", f"{reference.reason}, but there is no earlier turn")
    return reference, recent


class OfflineRewriter:
    """Rules, no model: deterministic, instant, and the fallback of the LLM rewriter."""

    def __init__(self, history_turns: int = 3) -> None:
        self.history_turns = history_turns

    async def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite:
        return self.rewrite_now(question, history)

    def rewrite_now(self, question: str, history: Sequence[Turn]) -> Rewrite:
        """The same rewrite, synchronously (evaluation rewrites thousands of questions)."""
        gated = _gate(question, history, self.history_turns)
        if isinstance(gated, Rewrite):
            return gated
        reference, recent = gated
        query, how = resolve(question, recent, reference)
        if query.strip() == question.strip():
            return Rewrite(question, False, "none", f"{reference.reason}; nothing to resolve it with")
        return Rewrite(query, True, "offline", f"{reference.reason}: {how}")


class NoRewriter:
    """``RAG_FOLLOWUP_REWRITE=off``: every question is searched as asked."""

    async def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite:
        del history  # the protocol's argument: nothing here reads it
        return Rewrite(question, False, "none", "follow-up rewriting is off")


SYSTEM_PROMPT = """You rewrite the last question of a conversation so that it stands alone, for a \
document search that cannot see the conversation.
Rules:
- Replace pronouns and references (it, its, they, their, he, she, that year, there...) with what \
they refer to in the conversation.
- Carry over the company, person, topic and period the question leaves implicit ("And in 2022?").
- Do not answer the question. Do not add facts that the conversation does not contain.
- If the question already stands alone, return it unchanged.
- Reply with the rewritten question only, on one line, without quotes or explanations."""

_ANSWER_CHARS = 300
"""How much of each earlier answer the prompt carries: enough for a name, bounded in tokens."""
_PREFIX = re.compile(
    r"^\s*(?:(?:standalone|rewritten|rephrased|reformulated)(?:\s+question)?|question|query|output)\s*:\s*",
    re.IGNORECASE,
)


def build_rewrite_request(question: str, history: Sequence[Turn], *, max_tokens: int) -> LLMRequest:
    """The request the gateway sends; its id and version key the cache (bump on rewording)."""
    lines = ["Conversation so far:"]
    for n, turn in enumerate(history, 1):
        lines.append(f"Q{n}: {turn.query}")
        answer = " ".join(turn.answer.split())
        if answer:
            lines.append(f"A{n}: {answer[:_ANSWER_CHARS]}{'...' if len(answer) > _ANSWER_CHARS else ''}")
    lines += ["", f"Last question: {question.strip()}", "", "Standalone question:"]
    return LLMRequest(
        messages=[
            Message(role="system", content=SYSTEM_PROMPT),
            Message(role="user", content="\n".join(lines)),
        ],
        max_tokens=max_tokens,
        temperature=0.0,
        prompt_id=PROMPT_ID,
        prompt_version=PROMPT_VERSION,
        question=question.strip(),
    )


def clean_output(text: str, question: str, history: Sequence[Turn]) -> tuple[str | None, str]:
    """The model's rewrite, or ``None`` and why it is not usable."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.endswith(":")] or lines
    if not lines:
        return None, "the model returned nothing"
    candidate = _PREFIX.sub("", lines[0]).strip().strip("\"'`“”‘’").strip()
    if not any(c.isalpha() for c in candidate):
        return None, "the model returned no words"
    if ABSTENTION_SENTENCE.lower() in candidate.lower() or EVIDENCE_SENTENCE.lower() in candidate.lower():
        return None, "the model returned the abstention sentence"
    if CITATION_MARKER.search(candidate):
        return None, "the model answered (citation markers) instead of rewriting"
    context = sum(len(t.query) for t in history[-1:])
    limit = max(200, 3 * (len(question) + context))
    if len(candidate) > limit:
        return None, f"the rewrite is longer than {limit} characters"
    return candidate, ""


class LlmRewriter:
    """Asks the LLM gateway for the standalone question, only for questions that refer back.

    Bounded in tokens (``max_tokens``) and time (``timeout_s``); cached and costed by the gateway
    like any request. Any failure (an error, the time running out, empty, garbage or too long
    output, the abstention sentence, an answer from an offline provider) gives the fallback's
    rewrite instead: a follow-up never fails because the rewriter did.
    """

    def __init__(
        self,
        gateway: RewriteGateway,
        *,
        max_tokens: int = 64,
        timeout_s: float = 5.0,
        fallback: FollowupRewriter | None = None,
        history_turns: int = 3,
        offline_providers: Iterable[str] = ("extractive",),
    ) -> None:
        """``offline_providers``: provider names whose replies are not rewrites (the extractive
        answerer reads sources, not messages, so its reply is never a rewritten question)."""
        self.gateway = gateway
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.fallback: FollowupRewriter = fallback or OfflineRewriter(history_turns)
        self.history_turns = history_turns
        self.offline_providers = frozenset(offline_providers)

    async def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite:
        gated = _gate(question, history, self.history_turns)
        if isinstance(gated, Rewrite):
            return gated
        _, recent = gated
        started = time.perf_counter()
        why = await self._ask(question, recent)
        if isinstance(why, Rewrite):
            return why
        log_event(
            logger,
            "followup_rewrite_fallback",
            logging.WARNING,
            reason=why,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        fallen = await self.fallback.rewrite(question, history)
        return Rewrite(
            fallen.query, fallen.rewritten, fallen.method, f"LLM rewrite unusable ({why}); {fallen.reason}"
        )

    async def _ask(self, question: str, history: Sequence[Turn]) -> Rewrite | str:
        request = build_rewrite_request(question, history, max_tokens=self.max_tokens)
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self.gateway.complete(request)
        except TimeoutError:
            return f"no reply within {self.timeout_s:g} s"
        except Exception as exc:  # any failure of the gateway falls back: rewriting is optional
            code = getattr(exc, "code", type(exc).__name__)
            return f"{code}: {exc}"
        if response.provider in self.offline_providers:
            return f"answered by {response.provider}, which cannot rewrite"
        if response.finish_reason == "length":
            return "the rewrite was cut off at its token limit"
        candidate, why = clean_output(response.text, question, history)
        if candidate is None:
            return why
        if candidate.strip() == question.strip():
            return Rewrite(question, False, "llm", "the model kept the question as it is")
        return Rewrite(candidate, True, "llm", "rewritten by the model")


def make_rewriter(settings: Settings, gateway: RewriteGateway | None) -> FollowupRewriter:
    """The rewriter ``RAG_FOLLOWUP_REWRITE`` asks for: ``auto`` is the LLM one when the chain has
    a real model (not only the extractive answerer, which cannot rewrite), else the offline one."""
    if settings.followup_rewrite == "off":
        return NoRewriter()
    offline = OfflineRewriter(settings.followup_history_turns)
    if settings.followup_rewrite == "offline" or gateway is None:
        return offline
    providers = load_chain(settings).providers
    models = [p for p in providers if p.type != "extractive"]
    if not models:
        return offline
    local = {p.name for p in providers if p.type == "extractive"} | {"extractive"}
    return LlmRewriter(
        gateway,
        max_tokens=settings.followup_rewrite_max_tokens,
        timeout_s=settings.followup_rewrite_timeout_s,
        fallback=offline,
        history_turns=settings.followup_history_turns,
        offline_providers=local,
    )


__all__ = [
    "PROMPT_ID",
    "PROMPT_VERSION",
    "FollowupRewriter",
    "LlmRewriter",
    "NoRewriter",
    "OfflineRewriter",
    "Rewrite",
    "RewriteMethod",
    "Turn",
    "build_rewrite_request",
    "make_rewriter",
    "refers_back",
]
