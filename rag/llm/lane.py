"""A provider with its own guards: breaker, rate limits, budget, timeouts, accounting.

``async with lane.admitted(call) as slot:`` takes what a call needs (deadline check, rate-limit
tokens, a breaker ticket, a budget reservation, in that order, before any byte is sent) and gives
all of it back exactly once however the block ends: success, a provider error, an unexpected
exception, cancellation, or a stream whose reader went away. Nothing else releases them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from rag.errors import (
    BudgetExceeded,
    CircuitOpen,
    InvalidOutput,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    RagError,
    StreamInterrupted,
    TruncatedOutput,
)
from rag.llm.breaker import BreakerState, CircuitBreaker, Outcome, Ticket
from rag.llm.budget import BudgetLedger, Reservation
from rag.llm.call import Call, Tally
from rag.llm.clock import Clock
from rag.llm.observer import Observer
from rag.llm.prices import Price, price_for
from rag.llm.providers import Completion, Provider
from rag.llm.ratelimit import RateLimiter
from rag.llm.schema import with_json_hint
from rag.llm.types import LLMRequest, Usage
from rag.llm.usage import estimate_text_tokens


@dataclass
class Slot:
    """What an admitted call holds; ``done`` records its completion for the accounting."""

    reserved_tokens: int = 0
    rate_taken: bool = False
    ticket: Ticket | None = None
    reservation: Reservation | None = None
    started: float = 0.0
    completion: Completion | None = None
    released: bool = False

    def done(self, completion: Completion) -> None:
        self.completion = completion


def _counts_against_breaker(exc: ProviderError) -> bool:
    """A rejected request is the caller's fault, not a sign the provider is down."""
    return not isinstance(exc, ProviderRejected | CircuitOpen | InvalidOutput | TruncatedOutput)


class Lane:
    def __init__(
        self,
        provider: Provider,
        *,
        breaker: CircuitBreaker,
        limiter: RateLimiter | None,
        price: Price,
        ledger: BudgetLedger,
        observer: Observer,
    ) -> None:
        self.provider = provider
        self.breaker = breaker
        self.limiter = limiter
        self.price = price
        self.ledger = ledger
        self.observer = observer

    @classmethod
    def build(
        cls,
        provider: Provider,
        *,
        ledger: BudgetLedger,
        observer: Observer,
        prices: Mapping[str, Price],
        clock: Clock,
    ) -> Lane:
        config = provider.config
        breaker = CircuitBreaker(
            provider.name,
            failure_threshold=config.breaker_failure_threshold,
            cooldown_s=config.breaker_cooldown_s,
            clock=clock.monotonic,
            on_change=lambda state: observer.record_breaker(provider, state),
        )
        observer.record_breaker(provider, BreakerState.CLOSED, initial=True)
        limiter = None
        if config.rpm or config.tpm:
            limiter = RateLimiter(config.rpm, config.tpm, clock=clock.monotonic)
        price = config.price() or price_for(provider.model, prices)
        return cls(provider, breaker=breaker, limiter=limiter, price=price, ledger=ledger, observer=observer)

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def model(self) -> str:
        return self.provider.model

    @property
    def local(self) -> bool:
        return self.provider.local

    # --- one call ---------------------------------------------------------------------

    async def complete(self, call: Call) -> Completion:
        """One attempt, bounded by the provider's total timeout and what the deadline leaves."""
        async with self.admitted(call) as slot:
            timeout = min(self.provider.config.total_timeout_s, call.remaining())
            try:
                async with asyncio.timeout(timeout):
                    completion = await self.provider.complete(call.request, max_tokens=call.max_tokens)
            except TimeoutError as exc:
                raise ProviderTimeout(
                    f"{self.name}: no answer within {timeout:.1f}s", provider=self.name
                ) from exc
            slot.done(completion)
        return completion

    async def stream(self, call: Call) -> AsyncGenerator[str | Completion, None]:
        """One attempt: text deltas, then the :class:`Completion`, all while admitted; any break
        is a ``ProviderError``. Close it (``aclose``) when done: that ends the admission."""
        async with self.admitted(call) as slot:
            items = self.provider.stream(call.request, max_tokens=call.max_tokens)
            async with aclosing(items):
                item = await self._first(items, call)
                while not isinstance(item, Completion):
                    yield item
                    try:
                        item = await anext(items)
                    except (StopAsyncIteration, TimeoutError, OSError, ValueError) as exc:
                        raise StreamInterrupted(f"{self.name}: stream broke off", provider=self.name) from exc
            slot.done(item)
        yield item

    async def _first(self, items: AsyncIterator[str | Completion], call: Call) -> str | Completion:
        timeout = min(self.provider.config.total_timeout_s, call.remaining())
        try:
            async with asyncio.timeout(timeout):
                return await anext(items)
        except TimeoutError as exc:
            raise ProviderTimeout(
                f"{self.name}: no stream within {timeout:.1f}s", provider=self.name
            ) from exc
        except StopAsyncIteration as exc:
            raise StreamInterrupted(f"{self.name}: empty stream", provider=self.name, retryable=True) from exc

    async def answer_locally(self, request: LLMRequest, tally: Tally) -> Completion:
        """In-process providers have no breaker, limits or budget; a bug still ends in a clear error."""
        started = time.perf_counter()
        try:
            completion = await self.provider.complete(request, max_tokens=request.max_tokens)
        except RagError as exc:
            self.observer.record_call(self, exc.code)
            raise
        except Exception as exc:
            self.observer.record_call(self, "internal_error")
            raise ProviderError(f"{self.name} failed: {type(exc).__name__}", provider=self.name) from exc
        self.observer.record_call(self, "success", seconds=time.perf_counter() - started)
        tally.add(None)
        return completion

    def prepare(self, request: LLMRequest, deadline: float, tally: Tally, clock: Clock) -> Call:
        """Fit ``request`` to this provider: JSON asked for in the prompt, and natively only where
        supported; ``max_tokens`` within the provider's ceiling and what its context window leaves."""
        sent = with_json_hint(request) if request.json_mode else request
        if request.json_mode and not self.provider.supports_json:
            sent = sent.model_copy(update={"json_mode": False})
        ceiling = self.provider.config.max_tokens
        call = Call(
            request=sent,
            model=self.model,
            max_tokens=ceiling,
            ceiling=ceiling,
            deadline=deadline,
            tally=tally,
            clock=clock,
            wants_json=request.json_mode,
        )
        window = self.provider.context_window
        if window is not None:
            room = window - call.prompt_estimate
            if room < 1:
                self.observer.record_call(self, ProviderRejected.code)
                raise ProviderRejected(
                    f"{self.name}: a prompt of about {call.prompt_estimate} tokens leaves no room in its "
                    f"{window}-token context window",
                    provider=self.name,
                )
            call.ceiling = min(ceiling, room)
        call.max_tokens = max(1, min(request.max_tokens, call.ceiling))
        return call

    def circuit_open(self) -> CircuitOpen:
        self.observer.record_call(self, CircuitOpen.code)
        return CircuitOpen(f"{self.name}: circuit open, skipped", provider=self.name)

    # --- admission ----------------------------------------------------------------------

    @asynccontextmanager
    async def admitted(self, call: Call) -> AsyncIterator[Slot]:
        """Hold what ``call`` needs for the duration of the block; give it back exactly once."""
        slot = await self._admit(call)
        try:
            yield slot
        except ProviderError as exc:
            self._fail(call, slot, exc)
            raise
        except Exception as exc:
            error = ProviderError(f"{self.name}: unexpected {type(exc).__name__}", provider=self.name)
            self._fail(call, slot, error)
            raise error from exc
        except BaseException:  # cancelled, or the reader went away: nobody's fault, count nothing
            self._release(slot, "neutral")
            raise
        if slot.completion is None:
            self._release(slot, "neutral")
        else:
            self._succeed(call, slot, slot.completion)

    async def _admit(self, call: Call) -> Slot:
        """Deadline, rate limits, breaker and budget, in that order, before any byte is sent."""
        remaining = call.remaining()
        if remaining <= 0:
            raise ProviderTimeout(f"{self.name}: request deadline spent", provider=self.name, retryable=False)
        slot = Slot()
        try:
            await self._take_rate(call, slot, remaining)
            slot.ticket = await self._take_ticket(call)
            slot.reservation = self._reserve(call)
        except BaseException:
            self._release(slot, "neutral", sent=False)
            raise
        slot.started = time.perf_counter()
        return slot

    async def _take_rate(self, call: Call, slot: Slot, remaining: float) -> None:
        if self.limiter is None:
            return
        tokens = call.prompt_estimate + call.max_tokens
        if not await self.limiter.acquire(tokens, min(self.provider.config.rate_wait_s, remaining)):
            self.observer.record_call(self, "throttled")
            raise ProviderRateLimited(
                f"{self.name}: client-side rpm/tpm limit reached", provider=self.name, retryable=False
            )
        slot.reserved_tokens, slot.rate_taken = tokens, True

    async def _take_ticket(self, call: Call) -> Ticket:
        try:
            return await self.breaker.acquire(max(0.0, call.remaining()))
        except CircuitOpen:
            self.observer.record_call(self, CircuitOpen.code)
            raise

    def _reserve(self, call: Call) -> Reservation | None:
        if not self.ledger.enabled or not (self.price.input_per_mtok or self.price.output_per_mtok):
            return None
        worst = self.price.cost(call.prompt_estimate, call.max_tokens)
        reservation = self.ledger.reserve(worst, call.request.api_key_id)
        if reservation is None:
            self.observer.record_call(self, BudgetExceeded.code)
            raise BudgetExceeded(
                f"{self.name}: a call could cost up to ${worst:.6f}, more than the daily budget has left",
                provider=self.name,
            )
        return reservation

    # --- release and accounting -----------------------------------------------------------

    def _release(
        self, slot: Slot, outcome: Outcome, *, cost: float = 0.0, used_tokens: int = 0, sent: bool = True
    ) -> None:
        """The one place a slot's holdings go back; a second call is a no-op."""
        if slot.released:
            return
        slot.released = True
        if slot.ticket is not None:
            self.breaker.release(slot.ticket, outcome)
        if slot.reservation is not None:
            self.ledger.settle(slot.reservation, cost)
        if slot.rate_taken and self.limiter is not None:
            if sent:
                self.limiter.settle(slot.reserved_tokens, used_tokens)
            else:
                self.limiter.cancel(slot.reserved_tokens)

    def _fail(self, call: Call, slot: Slot, exc: ProviderError) -> None:
        self._release(slot, "failure" if _counts_against_breaker(exc) else "neutral")
        call.tally.add(None)
        self.observer.record_call(self, exc.code, seconds=time.perf_counter() - slot.started)

    def _succeed(self, call: Call, slot: Slot, completion: Completion) -> None:
        usage = self._usage(call, completion)
        self._release(slot, "success", cost=usage.cost, used_tokens=usage.input_tokens + usage.output_tokens)
        call.tally.add(usage)
        outcome = "truncated" if completion.finish_reason == "length" else "success"
        self.observer.record_call(self, outcome, usage, time.perf_counter() - slot.started)

    def _usage(self, call: Call, completion: Completion) -> Usage:
        """What the provider reported, or our estimate (marked) where it reported nothing."""
        input_tokens = completion.input_tokens
        if input_tokens is None:
            input_tokens = call.prompt_estimate
        output_tokens = completion.output_tokens
        if output_tokens is None:
            output_tokens = estimate_text_tokens(completion.text, self.model)
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            estimated=completion.input_tokens is None or completion.output_tokens is None,
            cost=self.price.cost(input_tokens, output_tokens),
        )

    def status(self) -> dict[str, Any]:
        config = self.provider.config
        return {
            "name": self.name,
            "kind": self.provider.kind,
            "model": self.model,
            "local": self.local,
            "breaker": self.breaker.state.value,
            "consecutive_failures": self.breaker.consecutive_failures,
            "available": self.breaker.available(),
            "rpm": config.rpm,
            "tpm": config.tpm,
            "price_input_per_mtok": self.price.input_per_mtok,
            "price_output_per_mtok": self.price.output_per_mtok,
        }
