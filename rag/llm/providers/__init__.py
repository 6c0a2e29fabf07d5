"""Provider adapters: one vendor format each, no retrying or caching of their own.

Importing this package registers the built-in types; a new vendor's module is imported here too.
"""

from __future__ import annotations

from rag.llm.providers.anthropic import AnthropicConfig, AnthropicProvider
from rag.llm.providers.base import Completion, HttpProviderConfig, Provider, ProviderConfig
from rag.llm.providers.extractive import ExtractiveConfig, ExtractiveProvider
from rag.llm.providers.openai import OpenAIConfig, OpenAIProvider
from rag.llm.providers.registry import PROVIDER_TYPES, ProviderType, build_provider, provider_type, register

__all__ = [
    "PROVIDER_TYPES",
    "AnthropicConfig",
    "AnthropicProvider",
    "Completion",
    "ExtractiveConfig",
    "ExtractiveProvider",
    "HttpProviderConfig",
    "OpenAIConfig",
    "OpenAIProvider",
    "Provider",
    "ProviderConfig",
    "ProviderType",
    "build_provider",
    "provider_type",
    "register",
]
