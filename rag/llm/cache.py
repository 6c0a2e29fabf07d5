"""Exact-match response cache: SQLite on disk by default, Redis when one is configured.

The key covers everything that shapes the answer, including the ids and content hashes of the
sources, so re-ingesting a changed document makes its old answers unreachable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rag.db import connect
from rag.llm.loopbound import PerLoop
from rag.llm.observer import Observer
from rag.llm.types import LLMRequest, LLMResponse
from rag.logs import log_event, redact

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the stored response shape changes


def _normalise(text: str) -> str:
    return " ".join(text.split())


def cache_key(request: LLMRequest, chain: str) -> str:
    """A stable hash of the normalised request, the provider chain and the sources' identities."""
    material = {
        "format": CACHE_FORMAT,
        "chain": chain,
        "model": request.model,
        "messages": [[m.role, _normalise(m.content)] for m in request.messages],
        "question": _normalise(request.question),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "json": request.json_mode,
        "prompt": [request.prompt_id, request.prompt_version],
        "sources": [[s.n, s.chunk_id, s.content_sha256] for s in request.sources],
    }
    blob = json.dumps(material, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache(Protocol):
    name: str

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_s: float) -> None: ...

    async def aclose(self) -> None: ...


class SQLiteCache:
    """One table on local disk; reads and writes take well under a millisecond."""

    name = "sqlite"
    _PURGE_EVERY = 500

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        """``clock`` is wall time: expiries are stored and outlive the process."""
        self._clock = clock
        self._db = connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS llm_cache "
            "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL)"
        )
        self._lock = threading.Lock()
        self._writes = 0

    async def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM llm_cache WHERE key = ? AND expires > ?", (key, self._clock())
            ).fetchone()
        return str(row[0]) if row else None

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        now = self._clock()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO llm_cache (key, value, expires) VALUES (?, ?, ?)",
                (key, value, now + ttl_s),
            )
            self._writes += 1
            if self._writes % self._PURGE_EVERY == 0:
                self._db.execute("DELETE FROM llm_cache WHERE expires <= ?", (now,))

    async def aclose(self) -> None:
        with self._lock:
            self._db.close()


class RedisCache:
    """Shared between processes and machines; failures degrade to a miss, never to an error."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "rag:llm:") -> None:
        import redis.asyncio as aioredis

        self._prefix = prefix
        self._url = url
        self._clients: PerLoop[aioredis.Redis] = PerLoop(
            lambda: aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        )

    async def get(self, key: str) -> str | None:
        try:
            value = await self._clients.get().get(self._prefix + key)
        except Exception as exc:  # the cache is an optimisation; Redis being down must not fail answers
            log_event(
                logger, "llm cache read failed", logging.WARNING, backend="redis", error=redact(str(exc))
            )
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        try:
            await self._clients.get().set(self._prefix + key, value, ex=max(1, int(ttl_s)))
        except Exception as exc:
            log_event(
                logger, "llm cache write failed", logging.WARNING, backend="redis", error=redact(str(exc))
            )

    async def aclose(self) -> None:
        client = self._clients.current()
        if client is not None:
            await client.aclose()
        self._clients.forget()


class AnswerCache:
    """What the gateway caches: which requests may be served again, and only whole, first-choice answers."""

    def __init__(
        self,
        backend: ResponseCache | None,
        *,
        chain: str,
        ttl_s: float,
        nonzero_temperature: bool,
        observer: Observer,
    ) -> None:
        self.backend = backend
        self.chain = chain
        self.ttl_s = ttl_s
        self.nonzero_temperature = nonzero_temperature
        self.observer = observer

    def key(self, request: LLMRequest) -> str | None:
        if self.backend is None or (request.temperature > 0 and not self.nonzero_temperature):
            return None
        return cache_key(request, self.chain)

    async def lookup(self, key: str | None, request: LLMRequest) -> LLMResponse | None:
        """A stored answer made fresh (cached, free, no fallbacks), or None."""
        if key is None or self.backend is None:
            return None
        if request.bypass_cache:
            self.observer.record_cache("bypass")
            return None
        started = time.perf_counter()
        raw = await self.backend.get(key)
        response = None
        if raw is not None:
            try:
                response = LLMResponse.model_validate_json(raw)
            except ValueError:
                response = None
        if response is None:
            self.observer.record_cache("miss")
            return None
        self.observer.record_cache("hit", response)
        self.observer.record_request("cached")
        update = {
            "cached": True,
            "usage": response.usage.model_copy(update={"cost": 0.0}),
            "attempts": 0,
            "fallbacks": [],
            "latency_ms": (time.perf_counter() - started) * 1000,
        }
        return response.model_copy(update=update)

    async def store(self, key: str | None, response: LLMResponse) -> None:
        """A degraded answer is transient: once the better provider is back it should answer."""
        if key is None or self.backend is None or response.fallbacks or response.finish_reason == "length":
            return
        await self.backend.set(key, response.model_dump_json(), self.ttl_s)

    async def aclose(self) -> None:
        if self.backend is not None:
            await self.backend.aclose()
