"""A circuit breaker per provider, safe under many concurrent requests on one event loop.

Besides the classic closed/open/half-open states it caps the calls *in flight* while a provider
is unproven (its last outcome was not a success): otherwise 200 simultaneous requests against a
dead provider would all be sent before the first failure is even seen. A proven provider is not
capped; the cap only costs one round trip at start-up or right after a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from rag.errors import CircuitOpen

Outcome = Literal["success", "failure", "neutral"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass
class Ticket:
    """Permission for one call; exactly one ``release`` per ticket."""

    probe: bool = False
    released: bool = False


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.name = name
        self.threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._in_flight = 0
        self._probe_in_flight = False
        self._proven = False
        self._waiters: list[asyncio.Future[None]] = []

    # --- observation ----------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def in_flight(self) -> int:
        """Tickets handed out and not yet released."""
        return self._in_flight

    def available(self) -> bool:
        """Whether a call could be admitted now without waiting for the cool-down."""
        state = self.state
        if state is BreakerState.OPEN:
            return False
        return not (state is BreakerState.HALF_OPEN and self._probe_in_flight)

    # --- admission --------------------------------------------------------------

    def _set_state(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

    def _try_admit(self) -> Ticket | Literal["deny", "wait"]:
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.cooldown_s:
                return "deny"
            self._set_state(BreakerState.HALF_OPEN)
            self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN:
            if self._probe_in_flight:
                return "deny"
            self._probe_in_flight = True
            self._in_flight += 1
            return Ticket(probe=True)
        if self._proven or self._in_flight < max(1, self.threshold - self._failures):
            self._in_flight += 1
            return Ticket()
        return "wait"

    async def acquire(self, max_wait_s: float) -> Ticket:
        """Admit one call, waiting (bounded) while the provider is unproven; ``CircuitOpen`` if skipped."""
        deadline = self._clock() + max_wait_s
        while True:
            decision = self._try_admit()
            if isinstance(decision, Ticket):
                return decision
            remaining = deadline - self._clock()
            if decision == "deny" or remaining <= 0:
                raise CircuitOpen(
                    f"{self.name}: circuit {self.state.value}, provider skipped",
                    provider=self.name,
                    retryable=False,
                )
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        """Record how the call went: ``failure`` counts, ``neutral`` (the caller's fault) does not."""
        if ticket.released:
            return
        ticket.released = True
        self._in_flight = max(0, self._in_flight - 1)
        if ticket.probe:
            self._probe_in_flight = False
        if outcome == "success":
            self._failures = 0
            self._proven = True
            self._set_state(BreakerState.CLOSED)
        elif outcome == "failure":
            self._proven = False
            if self._state is BreakerState.HALF_OPEN:
                self._open()
            elif self._state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self.threshold:
                    self._open()
        self._wake()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set_state(BreakerState.OPEN)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
