"""Conversations (questions asked in turn, follow-ups made standalone) and feedback on answers.

All tenant-scoped: another tenant's conversation or answer id answers 404, like one that does not
exist. A conversation's turns are the answers exactly as they were returned, citations included.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.answers import conversation_of
from api.deps import ServiceDep, TenantDep
from api.problems import error_responses
from api.schemas import (
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    ConversationOut,
    FeedbackCreate,
    FeedbackOut,
)
from rag.answer import Answer
from rag.conversations import Conversation
from rag.errors import NotFound

router = APIRouter(prefix="/v1", tags=["conversations"])

_ERRORS = error_responses(401, 403, 404, 422, 429)


def _out(conversation: Conversation) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        collection=conversation.collection,
        title=conversation.title,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


@router.post(
    "/conversations",
    status_code=201,
    response_model=ConversationOut,
    responses=_ERRORS,
    summary="Start a conversation: ask in it with /v1/query's conversation_id or the chat endpoint",
)
async def create_conversation(
    body: ConversationCreate, service: ServiceDep, principal: TenantDep
) -> ConversationOut:
    collection = body.collection or service.settings.default_collection
    principal.internal(collection)  # the name is checked like every collection name
    store = service.backend.runtime.conversations
    created = await asyncio.to_thread(store.create, principal.tenant, collection, (body.title or "").strip())
    return _out(created)


@router.get(
    "/conversations",
    response_model=ConversationList,
    responses=_ERRORS,
    summary="Your conversations, most recently used first",
)
async def list_conversations(
    service: ServiceDep,
    principal: TenantDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ConversationList:
    store = service.backend.runtime.conversations
    found, total = await asyncio.to_thread(store.owned, principal.tenant, limit=limit, offset=offset)
    return ConversationList(conversations=[_out(c) for c in found], total=total)


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationDetail,
    responses=_ERRORS,
    summary="A conversation with its turns: questions, answers and their citations",
)
async def get_conversation(
    conversation_id: str, service: ServiceDep, principal: TenantDep
) -> ConversationDetail:
    conversation = await asyncio.to_thread(conversation_of, service, principal, conversation_id)
    store = service.backend.runtime.conversations
    turns = await asyncio.to_thread(store.turns, principal.tenant, conversation.id)
    return ConversationDetail(
        **_out(conversation).model_dump(), turns=[Answer.model_validate(t.answer) for t in turns]
    )


@router.delete(
    "/conversations/{conversation_id}",
    status_code=204,
    responses=_ERRORS,
    summary="Delete a conversation, its answers and their feedback",
)
async def delete_conversation(conversation_id: str, service: ServiceDep, principal: TenantDep) -> Response:
    store = service.backend.runtime.conversations
    if not await asyncio.to_thread(store.delete, principal.tenant, conversation_id):
        raise NotFound(f"conversation {conversation_id[:64]!r} not found")
    return Response(status_code=204)


@router.get(
    "/answers/{answer_id}",
    response_model=Answer,
    responses=_ERRORS,
    summary="An answer given earlier, exactly as it was returned",
)
async def get_answer(answer_id: str, service: ServiceDep, principal: TenantDep) -> Answer:
    stored = await asyncio.to_thread(
        service.backend.runtime.conversations.answer, principal.tenant, answer_id
    )
    if stored is None:
        raise NotFound(f"answer {answer_id[:64]!r} not found")
    return Answer.model_validate(stored.answer)


@router.post(
    "/answers/{answer_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses=_ERRORS,
    summary="Thumbs up or down on an answer, with an optional comment",
)
async def add_feedback(
    answer_id: str, body: FeedbackCreate, service: ServiceDep, principal: TenantDep
) -> FeedbackOut:
    store = service.backend.runtime.conversations
    feedback_id = await asyncio.to_thread(
        store.add_feedback, principal.tenant, answer_id, body.rating, body.comment.strip()
    )
    if feedback_id is None:
        raise NotFound(f"answer {answer_id[:64]!r} not found")
    service.metrics.feedback.labels(body.rating).inc()
    return FeedbackOut(id=feedback_id, answer_id=answer_id, rating=body.rating, comment=body.comment.strip())
