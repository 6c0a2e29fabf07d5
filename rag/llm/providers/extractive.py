"""The extractive answerer behind the provider contract, so the chain treats it like any model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from rag.llm.config import ProviderConfig
from rag.llm.extractive import DEFAULT_MIN_SCORE, ExtractiveAnswerer
from rag.llm.providers.base import Completion, Provider
from rag.llm.schema import ABSTENTION_SENTENCE
from rag.llm.types import LLMRequest

__all__ = ["ABSTENTION_SENTENCE", "ExtractiveProvider"]


class ExtractiveProvider(Provider):
    kind = "extractive"
    local = True

    def __init__(self, config: ProviderConfig, *, embedding_model: str, device: str = "cpu") -> None:
        super().__init__(config)
        self.answerer = ExtractiveAnswerer(
            embedding_model,
            device=device,
            min_score=config.min_score if config.min_score is not None else DEFAULT_MIN_SCORE,
            max_sentences=config.max_sentences or 2,
        )

    @staticmethod
    def _question(request: LLMRequest) -> str:
        if request.question.strip():
            return request.question
        users = [m.content for m in request.messages if m.role == "user"]
        return users[-1] if users else ""

    async def complete(self, request: LLMRequest, *, max_tokens: int) -> Completion:
        # embedding is CPU work: keep it off the event loop
        result = await asyncio.to_thread(self.answerer.answer, self._question(request), request.sources)
        return Completion(
            text=result.render(request.json_mode),
            finish_reason="stop",
            model="extractive",
            input_tokens=0,
            output_tokens=0,
        )

    async def stream(self, request: LLMRequest, *, max_tokens: int) -> AsyncGenerator[str | Completion, None]:
        completion = await self.complete(request, max_tokens=max_tokens)
        yield completion.text
        yield completion
