"""The extractive answerer behind the provider contract, so the chain treats it like any model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, Literal

from rag.llm.extractive import DEFAULT_EVIDENCE_SCORE, DEFAULT_MIN_SCORE, ExtractiveAnswerer
from rag.llm.providers.base import Completion, Provider, ProviderConfig
from rag.llm.providers.registry import ProviderType, register
from rag.llm.schema import ABSTENTION_SENTENCE
from rag.llm.types import LLMRequest
from rag.settings import Settings

__all__ = ["ABSTENTION_SENTENCE", "ExtractiveConfig", "ExtractiveProvider"]


class ExtractiveConfig(ProviderConfig):
    type: Literal["extractive"] = "extractive"
    model: str = "extractive"
    min_score: float | None = None
    evidence_score: float | None = None
    """Below ``min_score``, sentences with figures scoring this much are quoted as evidence
    (``answer_type: "evidence"``); set it to ``min_score`` to abstain instead."""
    max_sentences: int | None = None


class ExtractiveProvider(Provider):
    kind = "extractive"
    local = True
    config: ExtractiveConfig

    def __init__(self, config: ExtractiveConfig, *, embedding_model: str, device: str = "cpu") -> None:
        super().__init__(config)
        self.answerer = ExtractiveAnswerer(
            embedding_model,
            device=device,
            min_score=config.min_score if config.min_score is not None else DEFAULT_MIN_SCORE,
            evidence_score=(
                config.evidence_score if config.evidence_score is not None else DEFAULT_EVIDENCE_SCORE
            ),
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


def _build(config: ExtractiveConfig, settings: Settings) -> ExtractiveProvider:
    return ExtractiveProvider(
        config, embedding_model=settings.embedding_model, device=settings.embedding_device
    )


def _builtin(settings: Settings) -> dict[str, Any]:
    return {"model": "extractive"}


register("extractive", ProviderType(ExtractiveConfig, _build, _builtin))
