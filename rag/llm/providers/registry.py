"""Provider types by name: each maps to its configuration model and provider class.

A type may also be a built-in chain name (``openai``, ``anthropic``, ``extractive``): its
``builtin`` entry gives the defaults that name gets from ``Settings``. Adding a vendor is one
module that defines its config model and provider and calls :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rag.errors import ConfigurationError
from rag.llm.providers.base import Provider, ProviderConfig
from rag.settings import Settings


@dataclass(frozen=True)
class ProviderType:
    config: type[ProviderConfig]
    build: Callable[[Any, Settings], Provider]
    builtin: Callable[[Settings], dict[str, Any]] | None = None  # defaults of the chain name == type


PROVIDER_TYPES: dict[str, ProviderType] = {}


def register(name: str, kind: ProviderType) -> ProviderType:
    PROVIDER_TYPES[name] = kind
    return kind


def provider_type(name: str) -> ProviderType:
    try:
        return PROVIDER_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDER_TYPES))
        raise ConfigurationError(f"unknown provider type {name!r} (known: {known})") from None


def build_provider(config: ProviderConfig, settings: Settings) -> Provider:
    return provider_type(config.type).build(config, settings)
