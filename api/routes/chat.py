"""OpenAI-compatible chat: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Clients that speak OpenAI's Chat Completions (the ``openai`` SDKs, Open WebUI, AnythingLLM) talk
to the service unchanged: ``model`` names one of the caller's collections (``/v1/models`` lists
them), the last user message is the question and the earlier user/assistant pairs are the
conversation its follow-ups are resolved against. The reply's content is the grounded answer with
its ``[n]`` markers; the citations (the very objects ``/v1/query`` returns) travel in the extra
field ``citations`` on the message, and on the last chunk of a stream; ``rag`` carries the
answer's id (for feedback), the query used for retrieval and the answer type. System messages
are not forwarded: the grounded-answer prompt is the service's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.answers import Deadline, answer_asked, paced, prepare_question, stream_question
from api.auth import Principal
from api.deps import ServiceDep, TenantDep
from api.limits import check_top_k
from api.problems import error_responses
from api.service import Service
from rag.answer import Answer, StreamEvent
from rag.errors import InvalidRequest, NotFound, RagError
from rag.followups import Turn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai-compatible"])

MAX_MESSAGES = 200


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """OpenAI's request body; fields this service has no use for (temperature, user...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=64, description="one of your collections (see /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    conversation_id: str | None = Field(
        default=None, max_length=64, description="extension: store the turn in this conversation"
    )
    top_k: int | None = Field(default=None, ge=1, description="extension: sources to use")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def _text(message: ChatMessage) -> str:
    """A message's text: a string, or the ``text`` parts of a list (images and files are not read)."""
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "\n".join(str(p.get("text", "")) for p in parts if p.get("type") in ("text", "input_text"))


def _dialogue(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last message, from the user) and the earlier user turns with their replies."""
    said = [m for m in messages if m.role in ("user", "assistant")]
    if not said or said[-1].role != "user":
        raise InvalidRequest("messages: the last message must be the user's question")
    turns: list[Turn] = []
    for message in said[:-1]:
        if message.role == "user":
            turns.append(Turn(_text(message)))
        elif turns and not turns[-1].answer:
            turns[-1] = Turn(turns[-1].question, _text(message))
    return _text(said[-1]), turns


def _collections(service: Service, principal: Principal) -> list[str]:
    default = service.settings.default_collection
    owned = {principal.public(c) for c in service.backend.collections() if principal.owns(c)}
    return [default, *sorted(owned - {default})]


def _collection(service: Service, principal: Principal, model: str) -> str:
    principal.internal(model)  # the name is checked like every collection name
    if model not in _collections(service, principal):
        raise NotFound(f"model {model!r} not found: GET /v1/models lists your collections")
    return model


def _extension(answer: Answer) -> dict[str, Any]:
    return {
        "answer_id": answer.id,
        "conversation_id": answer.conversation_id,
        "retrieval_query": answer.retrieval_query,
        "rewrite_method": answer.rewrite_method,
        "answer_type": answer.answer_type,
        "abstained": answer.abstained,
    }


def _usage(answer: Answer) -> dict[str, int]:
    tokens_in, tokens_out = answer.usage.input_tokens, answer.usage.output_tokens
    return {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }


def _citations(answer: Answer) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in answer.citations]


@router.get(
    "/models",
    response_model=ModelList,
    responses=error_responses(401, 403, 429),
    summary="Your collections, as models",
)
async def list_models(service: ServiceDep, principal: TenantDep) -> ModelList:
    names = await asyncio.to_thread(_collections, service, principal)
    return ModelList(data=[ModelCard(id=name) for name in names])


@router.post(
    "/chat/completions",
    responses={
        200: {
            "description": "a chat completion, or an SSE stream of chunks",
            "content": {"text/event-stream": {}},
        },
        **error_responses(401, 402, 403, 404, 413, 422, 429, 502, 503, 504),
    },
    summary="OpenAI-compatible chat over a collection, with citations",
)
async def chat_completions(body: ChatRequest, service: ServiceDep, principal: TenantDep) -> Any:
    settings = service.settings
    top_k = check_top_k(body.top_k, settings)
    question, turns = _dialogue(body.messages)
    collection = await asyncio.to_thread(_collection, service, principal, body.model)
    deadline = Deadline(settings.query_deadline_s)
    history = turns if turns or body.conversation_id is None else None  # else: the stored turns
    created = int(time.time())
    try:
        async with deadline.timeout():
            asked = await prepare_question(
                service,
                principal,
                question,
                collection=collection,
                conversation_id=body.conversation_id,
                history=history,
            )
            if body.stream:
                events = stream_question(service, principal, asked, top_k=top_k, surface="chat")
                first = await anext(events)
            else:
                answer = await answer_asked(service, principal, asked, top_k=top_k, surface="chat")
    except TimeoutError:
        raise deadline.exceeded() from None
    except StopAsyncIteration:
        raise RagError("the answer stream ended before it began") from None
    if body.stream:
        usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            _chunks(
                events,
                first,
                deadline,
                stream_id=f"chatcmpl-{asked.answer_id}",
                model=body.model,
                created=created,
                usage=usage,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return {
        "id": f"chatcmpl-{answer.id}",
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.answer,
                    "refusal": None,
                    "citations": _citations(answer),
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(answer),
        "rag": _extension(answer),
    }


def _data(payload: Any) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def _chunks(
    events: AsyncIterator[StreamEvent],
    first: StreamEvent,
    deadline: Deadline,
    *,
    stream_id: str,
    model: str,
    created: int,
    usage: bool,
) -> AsyncIterator[bytes]:
    """OpenAI's chunk stream: the role, the text as it comes, then the finish with the citations."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": stream_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return _data(body)

    yield chunk({"role": "assistant", "content": ""})
    async for item in paced(events, first, deadline):
        if isinstance(item, dict):
            yield _data({"error": item})
        elif item.type == "answer" and item.answer is not None:
            answer = item.answer
            yield chunk({}, "stop", citations=_citations(answer), rag=_extension(answer))
            if usage:
                yield _data(
                    {
                        "id": stream_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": _usage(answer),
                    }
                )
        elif item.text:
            yield chunk({"content": item.text})
    yield b"data: [DONE]\n\n"
