"""Asking, for every surface (``/v1/query``, its stream, chat completions, MCP): one path.

CONTRACT (stub; the body is being filled in): each surface calls ``answer_question`` (or
``stream_question``) and returns the ``Answer`` it gets, citations untouched, so every surface
carries the same citation objects; the answer is stored (its ``id``) for history and feedback.
"""

from __future__ import annotations

from typing import Any

from api.auth import Principal
from api.service import Service
from rag.answer import Answer
from rag.types import Filters


async def answer_question(
    service: Service,
    principal: Principal,
    question: str,
    *,
    collection: str | None = None,
    conversation_id: str | None = None,
    filters: Filters | None = None,
    top_k: int | None = None,
    bypass_cache: bool = False,
    surface: str = "query",
) -> Answer:
    """The answer to ``question`` in the caller's ``collection`` (their default when None)."""
    settings = service.settings
    pipeline = await service.backend.query_pipeline()
    internal = principal.internal(collection or settings.default_collection)
    args: dict[str, Any] = {"filters": filters, "top_k": top_k, "api_key_id": principal.key_id}
    return await pipeline.ask(question, internal, bypass_cache=bypass_cache, **args)
