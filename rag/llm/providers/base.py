"""The provider contract: one call in a vendor's format, translated into the project's errors.

Providers do no retrying, caching or budgeting; the gateway wraps them with all of that. Each
provider type has its own configuration model on the shared base below (limits, timeouts,
prices), so a field means something for every provider that accepts it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from rag.llm.prices import Price
from rag.llm.types import LLMRequest


class ProviderConfig(BaseModel):
    """What every provider has: limits and timeouts (defaulting to the global settings) and prices."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    model: str = ""
    connect_timeout_s: float
    read_timeout_s: float
    total_timeout_s: float
    stream_idle_timeout_s: float
    max_attempts: int = Field(ge=1)
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    rate_wait_s: float = Field(ge=0)
    max_tokens: int = Field(ge=1)
    context_window: int | None = Field(default=None, ge=1)
    price_input_per_mtok: float | None = Field(default=None, ge=0)
    price_output_per_mtok: float | None = Field(default=None, ge=0)
    breaker_failure_threshold: int = Field(ge=1)
    breaker_cooldown_s: float = Field(ge=0)

    def price(self) -> Price | None:
        if self.price_input_per_mtok is None and self.price_output_per_mtok is None:
            return None
        return Price(self.price_input_per_mtok or 0.0, self.price_output_per_mtok or 0.0)


class HttpProviderConfig(ProviderConfig):
    """A provider reached over HTTP; the key comes from the environment or the secrets file only."""

    key_required: ClassVar[bool] = False  # True: refuse to start without a key, whatever the host

    base_url: str = ""
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


@dataclass
class Completion:
    """A provider's raw answer. Token counts are None when the provider did not report them."""

    text: str
    finish_reason: str  # "stop", "length" (truncated) or a vendor's other reason
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None


class Provider(ABC):
    """Capabilities are attributes so the gateway can choose without calling."""

    kind: str = ""
    local: bool = False  # runs in-process: no breaker, limits or budget apply

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self.model = config.model

    @property
    def supports_json(self) -> bool:
        """Whether the provider has a native JSON mode; without one the prompt alone asks for JSON."""
        return True

    @property
    def context_window(self) -> int | None:
        """Prompt plus answer, in tokens; None when unknown (then nothing is bounded by it)."""
        return self.config.context_window

    @abstractmethod
    async def complete(self, request: LLMRequest, *, max_tokens: int) -> Completion: ...

    @abstractmethod
    def stream(self, request: LLMRequest, *, max_tokens: int) -> AsyncGenerator[str | Completion, None]:
        """Text deltas, then exactly one :class:`Completion`; ending without one means the stream was cut."""

    async def aclose(self) -> None:
        return None
