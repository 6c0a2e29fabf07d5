"""Provider adapters: one vendor format each, no retrying or caching of their own."""

from __future__ import annotations

from rag.errors import ConfigurationError
from rag.llm.config import ProviderConfig
from rag.llm.providers.anthropic import AnthropicProvider
from rag.llm.providers.base import Completion, Provider
from rag.llm.providers.extractive import ExtractiveProvider
from rag.llm.providers.openai import OpenAIProvider


def build_provider(config: ProviderConfig, *, embedding_model: str, device: str = "cpu") -> Provider:
    if config.type == "openai":
        return OpenAIProvider(config)
    if config.type == "anthropic":
        return AnthropicProvider(config)
    if config.type == "extractive":
        return ExtractiveProvider(config, embedding_model=embedding_model, device=device)
    raise ConfigurationError(f"unknown provider type {config.type!r}")


__all__ = [
    "AnthropicProvider",
    "Completion",
    "ExtractiveProvider",
    "OpenAIProvider",
    "Provider",
    "build_provider",
]
