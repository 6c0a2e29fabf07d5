"""Anthropic Messages API (plain and streamed)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar, Literal

from rag.errors import MalformedResponse, ProviderError, StreamInterrupted
from rag.llm.providers.base import Completion, HttpProviderConfig
from rag.llm.providers.http import HttpProvider
from rag.llm.providers.registry import ProviderType, register
from rag.llm.types import LLMRequest
from rag.settings import Settings

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_RETRYABLE_ERRORS = {"overloaded_error", "api_error", "rate_limit_error"}


class AnthropicConfig(HttpProviderConfig):
    key_required: ClassVar[bool] = True

    type: Literal["anthropic"] = "anthropic"
    anthropic_version: str = "2023-06-01"


class AnthropicProvider(HttpProvider):
    """No JSON mode: the gateway asks for JSON in the prompt and checks what comes back."""

    kind = "anthropic"
    config: AnthropicConfig

    def __init__(self, config: AnthropicConfig) -> None:
        super().__init__(config)

    @property
    def supports_json(self) -> bool:
        return False

    @property
    def url(self) -> str:
        base = self.config.base_url.rstrip("/")
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def _auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.config.anthropic_version}
        if self.config.api_key is not None:
            headers["x-api-key"] = self.config.api_key.get_secret_value()
        return headers

    def body(self, request: LLMRequest, *, max_tokens: int, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns: list[dict[str, str]] = []
        for message in request.messages:
            if message.role == "system":
                continue
            if turns and turns[-1]["role"] == message.role:  # the API wants strictly alternating turns
                turns[-1]["content"] += "\n\n" + message.content
            else:
                turns.append({"role": message.role, "content": message.content})
        if not turns or turns[0]["role"] != "user":
            turns.insert(0, {"role": "user", "content": "(see the system prompt)"})
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": request.temperature,
            "messages": turns,
        }
        if system:
            body["system"] = system
        if stream:
            body["stream"] = True
        return body

    async def complete(self, request: LLMRequest, *, max_tokens: int) -> Completion:
        data = await self._post(self.url, self.body(request, max_tokens=max_tokens, stream=False))
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise MalformedResponse(
                f"{self.name}: response has no content", provider=self.name, retryable=True
            )
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        reason = str(data.get("stop_reason") or "end_turn")
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=_FINISH.get(reason, reason),
            model=str(data.get("model") or self.model),
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
        )

    async def stream(self, request: LLMRequest, *, max_tokens: int) -> AsyncGenerator[str | Completion, None]:
        body = self.body(request, max_tokens=max_tokens, stream=True)
        parts: list[str] = []
        reason: str | None = None
        model = self.model
        input_tokens: int | None = None
        output_tokens: int | None = None
        stopped = False
        async with self._open_stream(self.url, body) as events:
            async for _event, data in events:
                payload = self._event_json(data)
                kind = payload.get("type")
                if kind == "message_start":
                    message = payload.get("message") or {}
                    model = str(message.get("model") or model)
                    input_tokens = (message.get("usage") or {}).get("input_tokens")
                elif kind == "content_block_delta":
                    delta = payload.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        parts.append(delta["text"])
                        yield delta["text"]
                elif kind == "message_delta":
                    reason = (payload.get("delta") or {}).get("stop_reason") or reason
                    output_tokens = (payload.get("usage") or {}).get("output_tokens", output_tokens)
                elif kind == "message_stop":
                    stopped = True
                    break
                elif kind == "error":
                    error = payload.get("error") or {}
                    raise ProviderError(
                        f"{self.name}: stream error {error.get('type', '')}",
                        provider=self.name,
                        retryable=error.get("type") in _RETRYABLE_ERRORS,
                    )
        if not stopped:
            raise StreamInterrupted(
                f"{self.name}: stream ended without message_stop", provider=self.name, retryable=True
            )
        final = reason or "end_turn"
        yield Completion(
            text="".join(parts),
            finish_reason=_FINISH.get(final, final),
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )


def _builtin(settings: Settings) -> dict[str, Any]:
    return {
        "base_url": settings.anthropic_base_url,
        "model": settings.anthropic_model,
        "api_key": settings.anthropic_api_key,
    }


register(
    "anthropic", ProviderType(AnthropicConfig, lambda config, _settings: AnthropicProvider(config), _builtin)
)
