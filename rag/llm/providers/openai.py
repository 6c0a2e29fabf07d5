"""OpenAI-compatible Chat Completions: OpenAI, vLLM, Ollama, the llama.cpp server, LM Studio, Groq ..."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Literal

from rag.errors import MalformedResponse, StreamInterrupted
from rag.llm.providers.base import Completion, HttpProviderConfig
from rag.llm.providers.http import HttpProvider
from rag.llm.providers.registry import ProviderType, register
from rag.llm.schema import GroundedAnswer
from rag.llm.types import LLMRequest
from rag.settings import Settings

_FINISH = {"stop": "stop", "length": "length", "max_tokens": "length"}


class OpenAIConfig(HttpProviderConfig):
    """Any Chat Completions server; ``json_format = "prompt"`` for servers without a JSON mode."""

    type: Literal["openai"] = "openai"
    json_format: Literal["json_object", "json_schema", "prompt"] = "json_object"
    max_tokens_field: str = "max_tokens"
    stream_usage: bool = True


class OpenAIProvider(HttpProvider):
    kind = "openai"
    config: OpenAIConfig

    def __init__(self, config: OpenAIConfig) -> None:
        super().__init__(config)

    @property
    def supports_json(self) -> bool:
        return self.config.json_format != "prompt"

    @property
    def url(self) -> str:
        return self.config.base_url.rstrip("/") + "/chat/completions"

    def _auth_headers(self) -> dict[str, str]:
        key = self.config.api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {}

    def body(self, request: LLMRequest, *, max_tokens: int, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            self.config.max_tokens_field: max_tokens,
            "temperature": request.temperature,
        }
        if request.json_mode and self.config.json_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif request.json_mode and self.config.json_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "grounded_answer", "schema": GroundedAnswer.model_json_schema()},
            }
        if stream:
            body["stream"] = True
            if self.config.stream_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def _malformed(self, why: str) -> MalformedResponse:
        return MalformedResponse(f"{self.name}: {why}", provider=self.name, retryable=True)

    async def complete(self, request: LLMRequest, *, max_tokens: int) -> Completion:
        data = await self._post(self.url, self.body(request, max_tokens=max_tokens, stream=False))
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            reason = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise self._malformed("response has no choices[0].message") from exc
        if not isinstance(text, str):
            raise self._malformed("message content is not text")
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=_FINISH.get(reason, reason),
            model=str(data.get("model") or self.model),
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
        )

    async def stream(self, request: LLMRequest, *, max_tokens: int) -> AsyncGenerator[str | Completion, None]:
        body = self.body(request, max_tokens=max_tokens, stream=True)
        parts: list[str] = []
        reason: str | None = None
        model = self.model
        usage: dict[str, Any] = {}
        done = False
        async with self._open_stream(self.url, body) as events:
            async for _event, data in events:
                if data.strip() == "[DONE]":
                    done = True
                    break
                chunk = self._event_json(data)
                if "error" in chunk:
                    raise StreamInterrupted(f"{self.name}: error event in stream", provider=self.name)
                model = str(chunk.get("model") or model)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        parts.append(delta)
                        yield delta
                    if choice.get("finish_reason"):
                        reason = choice["finish_reason"]
        if not done and reason is None:
            raise StreamInterrupted(
                f"{self.name}: stream ended without a finish", provider=self.name, retryable=True
            )
        final = reason or "stop"
        yield Completion(
            text="".join(parts),
            finish_reason=_FINISH.get(final, final),
            model=model,
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
        )


def _builtin(settings: Settings) -> dict[str, Any]:
    return {
        "base_url": settings.openai_base_url,
        "model": settings.openai_model,
        "api_key": settings.openai_api_key,
    }


register("openai", ProviderType(OpenAIConfig, lambda config, _settings: OpenAIProvider(config), _builtin))
