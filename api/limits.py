"""The limits a request meets before it can cost anything: rate, sizes, bounds, a deadline."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rag.errors import DeadlineExceeded, InvalidRequest, RateLimited
from rag.llm.ratelimit import TokenBucket
from rag.settings import Settings

T = TypeVar("T")

JSON_BODY_LIMIT = 1024 * 1024
"""JSON requests (questions, searches) are small; anything bigger is refused unread."""

MAX_FILES_PER_UPLOAD = 100


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
    "RateLimiter",
    "check_question",
    "check_top_k",
    "with_deadline",
]
