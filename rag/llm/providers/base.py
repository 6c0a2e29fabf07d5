"""The provider contract: one call in a vendor's format, translated into the project's errors.

Providers do no retrying, caching or budgeting; the gateway wraps them with all of that.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from rag.llm.config import ProviderConfig
from rag.llm.types import LLMRequest


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
    supports_json: bool = True

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self.model = config.model
        self.context_window = config.context_window

    @abstractmethod
    async def complete(self, request: LLMRequest, *, max_tokens: int) -> Completion: ...

    @abstractmethod
    def stream(self, request: LLMRequest, *, max_tokens: int) -> AsyncGenerator[str | Completion, None]:
        """Text deltas, then exactly one :class:`Completion`; ending without one means the stream was cut."""

    async def aclose(self) -> None:
        return None
