"""The limits a request meets before it can cost anything: rate, sizes, bounds, a deadline."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from rag.errors import DeadlineExceeded, InvalidRequest, RateLimited
from rag.llm.ratelimit import TokenBucket
from rag.logs import log_event, redact
from rag.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

JSON_BODY_LIMIT = 1024 * 1024
"""JSON requests (questions, searches) are small; anything bigger is refused unread."""

MAX_FILES_PER_UPLOAD = 100


class RequestLimiter(Protocol):
    """Per-key request limits; every implementation runs ``tests/api/test_rate_limits.py``."""

    per_minute: int

    def check(self, key: str) -> None:
        """Take one request for ``key`` or raise ``RateLimited`` saying when to retry."""
        ...


class RateLimiter:
    """A token bucket per API key: ``per_minute`` requests, refilled continuously.

    The burst is ``per_minute`` (a client idle for a minute may spend it at once); full
    buckets are forgotten, so memory stays bounded by the keys active in the last minute.
    The buckets are the gateway's own (``rag.llm.ratelimit.TokenBucket``): one refill rule.
    """

    _PRUNE_ABOVE = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise ``RateLimited`` saying when one will be there."""
        if self.per_minute <= 0:
            return
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self.per_minute, clock=self.clock)
            wait = bucket.wait_for(1)
            if wait > 0:
                raise RateLimited(
                    f"More than {self.per_minute} requests a minute for this key; slow down",
                    retry_after=float(max(1, math.ceil(wait))),
                )
            bucket.take(1)
            if len(self._buckets) > self._PRUNE_ABOVE:
                self._prune()

    def _prune(self) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.is_full():
                del self._buckets[key]


_TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local per_s = capacity / 60.0
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_s)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / per_s
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return tostring(wait)
"""


class RedisRateLimiter:
    """The same token bucket per key, kept in Redis so every API replica spends one budget.

    The refill and the take run in one Lua script (atomic, with Redis's own clock, so replicas
    with skewed clocks agree); an idle key's state expires after two minutes (a bucket is full
    again after one, so forgetting it changes nothing).

    Redis unreachable: fail open to this replica's own bucket. Each request is then checked by an
    in-process ``RateLimiter`` of the same size, so a key gets ``per_minute`` per replica instead
    of per cluster: looser, never unlimited (the failed-auth limiter keeps slowing key guessing).
    Refusing every request instead would turn a Redis outage into a full one, for a limit that
    protects capacity, not data. A warning is logged at most every 30 s, the requests are counted
    (``rag_rate_limit_fallback_total``), and for ``retry_redis_after_s`` after a failure Redis is
    not asked, so a dead Redis costs at most one socket timeout (``timeout_s``) per period, in the
    threadpool that runs the sync dependency, not on the event loop.
    """

    _WARN_EVERY_S = 30.0

    def __init__(
        self,
        url: str,
        per_minute: int,
        *,
        prefix: str = "rag:rate:",
        timeout_s: float = 0.5,
        retry_redis_after_s: float = 5.0,
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.per_minute = per_minute
        self._prefix = prefix
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # one timeout, not the client's retries, bounds a request
        )
        self._script = self._client.register_script(_TOKEN_BUCKET)
        self._fallback = RateLimiter(per_minute)
        self._retry_after_s = retry_redis_after_s
        self._lock = threading.Lock()
        self._down_until = -math.inf
        self._warned_at = -math.inf
        self._failing = False
        self.failures = 0
        """Calls to Redis that failed."""
        self.fallback_checks = 0
        """Requests checked against this replica's own bucket instead of Redis."""

    def check(self, key: str) -> None:
        """Take one request for ``key`` or raise ``RateLimited`` saying when to retry."""
        if self.per_minute <= 0:
            return
        if time.monotonic() < self._down_until:
            self._check_locally(key)
            return
        try:
            wait = float(self._script(keys=[self._prefix + key], args=[self.per_minute]))
        except Exception as exc:  # fail open to the local bucket: see the class docstring
            self._failed(exc)
            self._check_locally(key)
            return
        if self._failing:
            self._recovered()
        if wait > 0:
            raise RateLimited(
                f"More than {self.per_minute} requests a minute for this key; slow down",
                retry_after=float(max(1, math.ceil(wait))),
            )

    def _check_locally(self, key: str) -> None:
        with self._lock:
            self.fallback_checks += 1
        self._fallback.check(key)

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self.failures += 1
            self._failing = True
            self._down_until = now + self._retry_after_s
            if now - self._warned_at < self._WARN_EVERY_S:
                return
            self._warned_at = now
        log_event(
            log,
            "rate limits per replica only: Redis unreachable",
            logging.WARNING,
            prefix=self._prefix,
            error=redact(str(exc)),
        )

    def _recovered(self) -> None:
        with self._lock:
            if not self._failing:
                return
            self._failing = False
        log_event(log, "rate limits shared again: Redis reachable", prefix=self._prefix)


class RateLimitMetrics(Collector):
    """Read at scrape time, so the limiters need no registry of their own."""

    def __init__(self, limiters: dict[str, RequestLimiter]) -> None:
        self.limiters = limiters

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "rag_rate_limit_fallback",
            "Requests rate-limited by this replica alone because Redis was unreachable",
            labels=["limiter"],
        )
        for name, limiter in self.limiters.items():
            if isinstance(limiter, RedisRateLimiter):
                family.add_metric([name], limiter.fallback_checks)
        yield family


def build_limiter(settings: Settings, per_minute: int, name: str = "rate") -> RequestLimiter:
    """Shared by every replica through Redis when ``RAG_REDIS_URL`` is set, else this process's."""
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, per_minute, prefix=f"rag:{name}:")
    return RateLimiter(per_minute)


def check_question(question: str, settings: Settings) -> str:
    question = question.strip()
    if not question:
        raise InvalidRequest("question: must not be empty")
    if len(question) > settings.max_question_chars:
        raise InvalidRequest(
            f"question: {len(question)} characters; the limit is {settings.max_question_chars}",
            limit=settings.max_question_chars,
        )
    return question


def check_top_k(top_k: int | None, settings: Settings) -> int:
    if top_k is None:
        return min(settings.top_k, settings.max_top_k)
    if not 1 <= top_k <= settings.max_top_k:
        raise InvalidRequest(f"top_k: must be between 1 and {settings.max_top_k}", limit=settings.max_top_k)
    return top_k


async def with_deadline(work: Awaitable[T], seconds: float, what: str = "the query") -> T:
    """Bound a request's handling; a slow model or index turns into 504, not a hung client."""
    try:
        return await asyncio.wait_for(work, timeout=seconds)
    except TimeoutError:
        raise DeadlineExceeded(f"{what} took longer than {seconds:g} s") from None


__all__ = [
    "JSON_BODY_LIMIT",
    "MAX_FILES_PER_UPLOAD",
    "RateLimitMetrics",
    "RateLimiter",
    "RedisRateLimiter",
    "RequestLimiter",
    "build_limiter",
    "check_question",
    "check_top_k",
    "with_deadline",
]
