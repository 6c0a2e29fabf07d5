"""When to try a provider again, and how long to wait first: one policy, one loop.

Only retryable provider errors are retried, at most ``max_attempts`` times, waiting what
``Retry-After`` asks (if we are willing to) or a full-jitter exponential backoff, and never past
the request's deadline, so a user request cannot turn into a retry storm.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState

from rag.errors import ProviderError
from rag.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    backoff_base_s: float
    backoff_max_s: float
    retry_after_cap_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.llm_backoff_base_s, settings.llm_backoff_max_s, settings.llm_retry_after_cap_s)

    def delay(self, error: BaseException, attempt: int, max_attempts: int, time_left: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up on this provider."""
        if not isinstance(error, ProviderError) or not error.retryable or attempt >= max_attempts:
            return None
        retry_after = error.retry_after
        if retry_after is not None:
            if retry_after > self.retry_after_cap_s:
                return None  # the provider asks for longer than we will wait: move on
            # the server's floor, plus a little jitter so waiting clients do not return together
            wait = retry_after + random.uniform(0, min(0.25, 0.1 * retry_after))
        else:
            wait = random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))
        return None if wait >= time_left else wait


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    max_attempts: int,
    time_left: Callable[[], float],
    on_retry: Callable[[int, float, ProviderError], None],
) -> T:
    """Run ``attempt`` until it succeeds or ``policy`` says stop; the last error is re-raised.

    tenacity runs the loop; ``policy`` alone decides whether and how long to wait.
    """
    waits: dict[int, float] = {}

    def should_retry(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(error, ProviderError):
            return False
        wait = policy.delay(error, state.attempt_number, max_attempts, time_left())
        if wait is None:
            return False
        waits[state.attempt_number] = wait
        on_retry(state.attempt_number, wait, error)
        return True

    async for try_ in AsyncRetrying(
        retry=should_retry, wait=lambda state: waits[state.attempt_number], reraise=True, sleep=asyncio.sleep
    ):
        with try_:
            return await attempt()
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
