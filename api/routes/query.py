"""Questions (answered, or streamed as Server-Sent Events) and retrieval-only search."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.answers import Deadline, answer_asked, paced, prepare_question, stream_question
from api.auth import Principal
from api.deps import ServiceDep, TenantDep
from api.limits import check_question, check_top_k
from api.problems import error_responses
from api.schemas import QueryRequest, SearchRequest
from api.service import Service
from rag.answer import Answer, SearchResult, StreamEvent
from rag.errors import RagError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["query"])

_QUERY_ERRORS = error_responses(401, 402, 403, 413, 422, 429, 502, 503, 504)
_SSE_DOC = (
    'With `stream: true`: `event: delta` events whose data is `{"text": ...}`, then one `event: answer`'
    " whose data is the answer object (citations, usage, timings); a failure after the stream began is an"
    " `event: error` whose data is a problem object."
)


def _scope(service: Service, principal: Principal, collection: str | None) -> str:
    return principal.internal(collection or service.settings.default_collection)


@router.post(
    "/query",
    response_model=Answer,
    responses={
        200: {"description": "the answer, or an SSE stream of it", "content": {"text/event-stream": {}}},
        **_QUERY_ERRORS,
    },
    summary="Ask a question; the answer cites document, pages and snippet",
    description=_SSE_DOC,
)
async def query(body: QueryRequest, service: ServiceDep, principal: TenantDep) -> Any:
    settings = service.settings
    top_k = check_top_k(body.top_k, settings)
    deadline = Deadline(settings.query_deadline_s)
    args: dict[str, Any] = {
        "filters": body.filters or None,
        "top_k": top_k,
        "bypass_cache": body.bypass_cache,
        "surface": "query",
    }
    try:
        async with deadline.timeout():
            asked = await prepare_question(
                service,
                principal,
                body.question,
                collection=body.collection,
                conversation_id=body.conversation_id,
            )
            if body.stream:
                events = stream_question(service, principal, asked, **args)
                first = await anext(events)
            else:
                answer = await answer_asked(service, principal, asked, **args)
    except TimeoutError:
        raise deadline.exceeded() from None
    except StopAsyncIteration:
        raise RagError("the answer stream ended before it began") from None
    if body.stream:
        return StreamingResponse(
            _sse(events, first, deadline),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return answer


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _sse(
    events: AsyncIterator[StreamEvent], first: StreamEvent, deadline: Deadline
) -> AsyncIterator[bytes]:
    """Deltas as they come, the checked answer last; errors after the first byte become an event."""
    async for item in paced(events, first, deadline):
        if isinstance(item, dict):
            yield _event("error", item)
        elif item.type == "answer" and item.answer is not None:
            yield _event("answer", item.answer.model_dump(mode="json"))
        else:
            yield _event("delta", {"text": item.text})


@router.post(
    "/search",
    response_model=SearchResult,
    responses=error_responses(401, 403, 413, 422, 429, 503, 504),
    summary="Retrieval only: the best chunks with every stage's scores",
)
async def search(body: SearchRequest, service: ServiceDep, principal: TenantDep) -> SearchResult:
    settings = service.settings
    question = check_question(body.query, settings)
    top_k = check_top_k(body.top_k, settings)
    collection = _scope(service, principal, body.collection)
    deadline = Deadline(settings.query_deadline_s)
    try:
        async with deadline.timeout():
            pipeline = await service.backend.query_pipeline()
            return await asyncio.to_thread(pipeline.search, question, collection, body.filters or None, top_k)
    except TimeoutError:
        raise deadline.exceeded() from None
