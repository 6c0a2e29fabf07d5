"""What HTTP providers share: a pooled httpx client per event loop, SSE reading, error translation."""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import httpx

from rag.errors import (
    MalformedResponse,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    StreamInterrupted,
)
from rag.llm.loopbound import PerLoop
from rag.llm.providers.base import HttpProviderConfig, Provider
from rag.logs import redact

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle takes ~50-100 ms; every client in the process can share one context."""
    return httpx.create_ssl_context()


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    provider: str, response: httpx.Response, body: str, secret: str | None = None
) -> ProviderError:
    """Map an HTTP failure to the error tree; only statuses that can succeed later are retryable."""
    status = response.status_code
    if secret:  # some vendors echo the key they refused; whatever its shape, it goes
        body = body.replace(secret, "***")
    detail = redact(" ".join(body.split())[:300])
    message = f"{provider}: HTTP {status}: {detail}" if detail else f"{provider}: HTTP {status}"
    if status == 429:
        return ProviderRateLimited(
            message, provider=provider, retry_after=parse_retry_after(response.headers), http_status=status
        )
    if status in _RETRYABLE_STATUS or status >= 500:
        return ProviderError(
            message,
            provider=provider,
            retryable=True,
            retry_after=parse_retry_after(response.headers),
            http_status=status,
        )
    if status in (401, 403):
        return ProviderAuthFailed(message, provider=provider, http_status=status)
    return ProviderRejected(message, provider=provider, http_status=status)


def error_for_transport(provider: str, exc: httpx.HTTPError, *, streaming: bool = False) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__
        return ProviderTimeout(f"{provider}: {kind}", provider=provider, retryable=True)
    if streaming and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return StreamInterrupted(
            f"{provider}: stream broke off ({type(exc).__name__})", provider=provider, retryable=True
        )
    return ProviderError(
        f"{provider}: connection failed ({type(exc).__name__})", provider=provider, retryable=True
    )


def decode_json(provider: str, body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(
            f"{provider}: response is not JSON", provider=provider, retryable=True
        ) from exc
    if not isinstance(data, dict):
        raise MalformedResponse(
            f"{provider}: response is not a JSON object", provider=provider, retryable=True
        )
    return data


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Server-sent events as ``(event, data)``; comments and keep-alives are skipped."""
    event, data = "", list[str]()
    async for line in lines:
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", list[str]()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event or "message", "\n".join(data)


class HttpProvider(Provider):
    config: HttpProviderConfig

    def __init__(self, config: HttpProviderConfig) -> None:
        super().__init__(config)
        self._clients: PerLoop[httpx.AsyncClient] = PerLoop(self._new_client)

    def _new_client(self) -> httpx.AsyncClient:
        config = self.config
        timeout = httpx.Timeout(
            connect=config.connect_timeout_s,
            read=config.read_timeout_s,
            write=config.read_timeout_s,
            pool=config.connect_timeout_s,
        )
        return httpx.AsyncClient(
            timeout=timeout,
            headers={**self._auth_headers(), **config.headers},
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            verify=_ssl_context(),
        )

    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _secret(self) -> str | None:
        key = self.config.api_key
        return key.get_secret_value() if key is not None else None

    def _stream_timeout(self) -> httpx.Timeout:
        # while streaming, httpx's per-read timeout is exactly an idle timeout between chunks
        config = self.config
        return httpx.Timeout(
            connect=config.connect_timeout_s,
            read=config.stream_idle_timeout_s,
            write=config.read_timeout_s,
            pool=config.connect_timeout_s,
        )

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._clients.get().post(url, json=body)
        except httpx.HTTPError as exc:
            raise error_for_transport(self.name, exc) from exc
        if response.status_code >= 400:
            raise error_for_status(self.name, response, response.text, self._secret())
        return decode_json(self.name, response.content)

    @asynccontextmanager
    async def _open_stream(
        self, url: str, body: dict[str, Any]
    ) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        client = self._clients.get()
        try:
            async with client.stream("POST", url, json=body, timeout=self._stream_timeout()) as response:
                if response.status_code >= 400:
                    raw = await response.aread()
                    raise error_for_status(
                        self.name, response, raw.decode("utf-8", "replace"), self._secret()
                    )
                yield self._events(response)
        except httpx.HTTPError as exc:
            raise error_for_transport(self.name, exc, streaming=True) from exc

    async def _events(self, response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
        started = time.monotonic()
        async for event in iter_sse(response.aiter_lines()):
            if time.monotonic() - started > self.config.total_timeout_s:
                raise ProviderTimeout(f"{self.name}: stream exceeded its total timeout", provider=self.name)
            yield event

    def _event_json(self, data: str) -> dict[str, Any]:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise MalformedResponse(f"{self.name}: malformed stream event", provider=self.name) from exc
        if not isinstance(payload, dict):
            raise MalformedResponse(f"{self.name}: malformed stream event", provider=self.name)
        return payload

    async def aclose(self) -> None:
        client = self._clients.current()
        if client is not None:
            await client.aclose()
        self._clients.forget()
