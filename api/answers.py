"""Asking, for every surface (``/v1/query``, its stream, chat completions, MCP): one path.

Each surface calls ``answer_question`` or ``stream_question`` and passes on the ``Answer`` it gets,
citations untouched, so every surface carries the same citation objects. Here a follow-up is made
standalone against its conversation's recent turns, and the answer is stored (its ``id``) for the
conversation's history and for feedback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from api.auth import Principal
from api.limits import check_question
from api.problems import problem_body
from api.service import Service
from rag.answer import Answer, StreamEvent
from rag.conversations import Conversation, new_id
from rag.errors import DeadlineExceeded, InvalidRequest, NotFound, RagError
from rag.followups import Rewrite, Turn
from rag.tracing import tracer
from rag.types import Filters

log = logging.getLogger(__name__)


class Deadline:
    """A request's time limit, shared by every await of the request (and of its stream)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = asyncio.get_running_loop().time() + seconds

    def timeout(self) -> asyncio.Timeout:
        return asyncio.timeout_at(self.at)

    def exceeded(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"the query took longer than {self.seconds:g} s")


@dataclass(frozen=True, slots=True)
class Asked:
    """A question made ready to answer: where, in which conversation, and what to retrieve with."""

    question: str
    collection: str
    """The internal (tenant-scoped) collection."""
    conversation: Conversation | None
    rewrite: Rewrite
    answer_id: str
    """Known before answering, so a stream's chunks can carry it from the first."""


def conversation_of(service: Service, principal: Principal, conversation_id: str) -> Conversation:
    """The caller's conversation; another tenant's, or none, is 404 alike."""
    found = service.backend.runtime.conversations.get(principal.tenant, conversation_id)
    if found is None:
        raise NotFound(f"conversation {conversation_id[:64]!r} not found")
    return found


def history_of(service: Service, principal: Principal, conversation: Conversation) -> list[Turn]:
    turns = service.backend.runtime.conversations.turns(
        principal.tenant, conversation.id, last=service.settings.followup_history_turns
    )
    return [Turn(t.question, str(t.answer.get("answer", "")), t.retrieval_query) for t in turns]


async def prepare_question(
    service: Service,
    principal: Principal,
    question: str,
    *,
    collection: str | None,
    conversation_id: str | None,
    history: Sequence[Turn] | None = None,
) -> Asked:
    """Check the question, find its conversation, and make it standalone when it refers back.

    ``history`` (the chat endpoint's messages) is used when given; else the conversation's turns."""
    settings = service.settings
    question = check_question(question, settings)
    conversation = None
    if conversation_id is not None:
        conversation = await asyncio.to_thread(conversation_of, service, principal, conversation_id)
        if collection is not None and collection != conversation.collection:
            raise InvalidRequest(
                f"collection: conversation {conversation.id!r} asks collection {conversation.collection!r}"
            )
        collection = conversation.collection
        if history is None:
            history = await asyncio.to_thread(history_of, service, principal, conversation)
    internal = principal.internal(collection or settings.default_collection)
    if history:
        await service.backend.query_pipeline()  # the rewriter may need the warmed gateway
        with tracer.start_as_current_span("rewrite") as span:
            rewrite = await service.backend.runtime.rewriter.rewrite(question, history)
            span.set_attributes({"rag.rewritten": rewrite.rewritten, "rag.rewrite_method": rewrite.method})
    else:
        rewrite = Rewrite(question, False, "none")
    return Asked(question, internal, conversation, rewrite, new_id("ans"))


def _finish(
    service: Service, principal: Principal, asked: Asked, answer: Answer, surface: str, *, streamed: bool
) -> Answer:
    """The answer with its id and query fields, stored as it will be returned, and counted."""
    answer.id = asked.answer_id
    answer.conversation_id = asked.conversation.id if asked.conversation else None
    answer.question = asked.question
    answer.retrieval_query = asked.rewrite.query
    answer.rewrite_method = asked.rewrite.method if asked.rewrite.rewritten else "none"
    service.backend.runtime.conversations.add_answer(
        principal.tenant,
        answer.id,
        conversation_id=answer.conversation_id,
        surface=surface,
        question=asked.question,
        retrieval_query=asked.rewrite.query,
        answer=answer.model_dump(mode="json"),
    )
    service.metrics.answers_stored.labels(surface).inc()
    service.metrics.answers.labels(
        str(answer.abstained).lower(), str(answer.cached).lower(), str(streamed).lower()
    ).inc()
    return answer


async def answer_question(
    service: Service,
    principal: Principal,
    question: str,
    *,
    collection: str | None = None,
    conversation_id: str | None = None,
    history: Sequence[Turn] | None = None,
    filters: Filters | None = None,
    top_k: int | None = None,
    bypass_cache: bool = False,
    surface: str = "query",
) -> Answer:
    """The answer to ``question`` in the caller's ``collection`` (their default when None)."""
    asked = await prepare_question(
        service, principal, question, collection=collection, conversation_id=conversation_id, history=history
    )
    return await answer_asked(
        service, principal, asked, filters=filters, top_k=top_k, bypass_cache=bypass_cache, surface=surface
    )


async def answer_asked(
    service: Service,
    principal: Principal,
    asked: Asked,
    *,
    filters: Filters | None = None,
    top_k: int | None = None,
    bypass_cache: bool = False,
    surface: str = "query",
) -> Answer:
    """The stored answer to a prepared question (``prepare_question``)."""
    pipeline = await service.backend.query_pipeline()
    answer = await pipeline.ask(
        asked.rewrite.query,
        asked.collection,
        filters=filters,
        top_k=top_k,
        api_key_id=principal.key_id,
        bypass_cache=bypass_cache,
    )
    return await asyncio.to_thread(_finish, service, principal, asked, answer, surface, streamed=False)


async def stream_question(
    service: Service,
    principal: Principal,
    asked: Asked,
    *,
    filters: Filters | None = None,
    top_k: int | None = None,
    bypass_cache: bool = False,
    surface: str = "query",
) -> AsyncIterator[StreamEvent]:
    """Deltas as the model writes them, then the stored answer (``prepare_question`` first: its
    errors must reach the caller before a stream begins)."""
    pipeline = await service.backend.query_pipeline()
    events = pipeline.stream(
        asked.rewrite.query,
        asked.collection,
        filters=filters,
        top_k=top_k,
        api_key_id=principal.key_id,
        bypass_cache=bypass_cache,
    )
    try:
        async for event in events:
            if event.type == "answer" and event.answer is not None:
                stored = await asyncio.to_thread(
                    _finish, service, principal, asked, event.answer, surface, streamed=True
                )
                yield StreamEvent(type="answer", answer=stored)
            else:
                yield event
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()


async def paced(
    events: AsyncIterator[StreamEvent], first: StreamEvent, deadline: Deadline
) -> AsyncIterator[StreamEvent | dict[str, Any]]:
    """A stream's events, each awaited within the request's deadline. A failure after the stream
    began (its status is sent) ends it with one problem body instead: each surface frames it."""
    event: StreamEvent | None = first
    try:
        while event is not None:
            yield event
            try:
                async with deadline.timeout():
                    event = await anext(events)
            except StopAsyncIteration:
                event = None
    except TimeoutError:
        yield problem_body(deadline.exceeded())
    except RagError as exc:
        yield problem_body(exc)
    except Exception:
        log.exception("answer stream failed")
        yield problem_body(RagError("The answer stream failed; it has been logged."))
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()


__all__ = [
    "Asked",
    "Deadline",
    "answer_asked",
    "answer_question",
    "conversation_of",
    "history_of",
    "paced",
    "prepare_question",
    "stream_question",
]
