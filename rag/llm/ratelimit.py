"""Token buckets: the providers' client-side rpm/tpm limits and the HTTP API's per-key limit.

Reservations go into debt: a caller takes its tokens at once and sleeps until the bucket would
have held them, so concurrent callers queue fairly without a lock and without busy waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be > 0")
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self._tokens = self.capacity
        self._clock = clock
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` could be taken (a request larger than the bucket waits for a full one)."""
        self._refill()
        amount = min(amount, self.capacity)
        return max(0.0, (amount - self._tokens) / self.rate)

    def take(self, amount: float) -> None:
        self._tokens -= min(amount, self.capacity)

    def refund(self, amount: float) -> None:
        self._refill()
        self._tokens = min(self.capacity, self._tokens + amount)

    @property
    def available(self) -> float:
        """Tokens in the bucket now (negative while in debt)."""
        self._refill()
        return self._tokens

    def is_full(self) -> bool:
        """A full bucket holds no state worth keeping: forgetting it changes nothing."""
        return self.available >= self.capacity


class RateLimiter:
    """One provider's rpm and tpm buckets, reserved together or not at all."""

    def __init__(
        self, rpm: float | None, tpm: float | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.requests = TokenBucket(rpm, clock=clock) if rpm else None
        self.tokens = TokenBucket(tpm, clock=clock) if tpm else None

    async def acquire(self, tokens: int, max_wait_s: float) -> bool:
        """Take one request and ``tokens``; wait up to ``max_wait_s``, else take nothing and say no."""
        waits = [0.0]
        if self.requests is not None:
            waits.append(self.requests.wait_for(1))
        if self.tokens is not None:
            waits.append(self.tokens.wait_for(tokens))
        wait = max(waits)
        if wait > max_wait_s:
            return False
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(tokens)
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except BaseException:  # cancelled while waiting: nothing was sent
                self.cancel(tokens)
                raise
        return True

    def cancel(self, tokens: int) -> None:
        """Give everything back: the call was never sent (breaker or budget said no)."""
        if self.requests is not None:
            self.requests.refund(1)
        if self.tokens is not None:
            self.tokens.refund(tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Give back what the estimate over-reserved (worst case ``max_tokens`` rarely gets used)."""
        if self.tokens is not None and actual_tokens < estimated_tokens:
            self.tokens.refund(estimated_tokens - actual_tokens)
