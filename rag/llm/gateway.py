"""The one door to language models: cache, then providers in fallback order, each guarded.

Per provider call: circuit breaker, client-side rate limits, budget reservation, timeouts, and
retries with full-jitter backoff that honour ``Retry-After`` (tenacity), all inside one deadline
per request so a user request can never turn into a retry storm. Truncated output gets one retry
with more room, invalid JSON one repair; after that the next provider answers. The extractive
answerer runs in-process as the last resort and ignores the deadline: a late answer beats none.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from rag.errors import (
    BudgetExceeded,
    CircuitOpen,
    InvalidOutput,
    InvalidRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RagError,
    StreamInterrupted,
    TruncatedOutput,
)
from rag.llm.breaker import BreakerState, CircuitBreaker, Ticket
from rag.llm.budget import BudgetLedger, Reservation
from rag.llm.cache import RedisCache, ResponseCache, SQLiteCache, cache_key
from rag.llm.config import extractive_config, load_chain
from rag.llm.metrics import GatewayMetrics
from rag.llm.prices import Price, price_for
from rag.llm.providers import Completion, Provider, build_provider
from rag.llm.ratelimit import RateLimiter
from rag.llm.schema import JSON_SHAPE_HINT, canonical_json, parse_grounded_answer, repair_instruction
from rag.llm.types import LLMRequest, LLMResponse, Message, StreamDelta, Usage
from rag.llm.usage import estimate_prompt_tokens, estimate_text_tokens
from rag.logs import log_event, redact
from rag.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Lane:
    """A provider with its own guards."""

    provider: Provider
    breaker: CircuitBreaker
    limiter: RateLimiter | None
    price: Price

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def model(self) -> str:
        return self.provider.model


@dataclass
class _Tally:
    """What one gateway request spent across all the calls it made."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    estimated: bool = False

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            estimated=self.estimated,
            cost=round(self.cost, 10),
        )


@dataclass
class _Call:
    """One prepared request to one lane; the prompt estimate is computed at most once, on demand."""

    lane: Lane
    request: LLMRequest
    max_tokens: int
    deadline: float
    tally: _Tally
    _prompt_estimate: int | None = field(default=None, repr=False)

    @property
    def prompt_estimate(self) -> int:
        if self._prompt_estimate is None:
            self._prompt_estimate = estimate_prompt_tokens(self.request.messages, self.lane.model)
        return self._prompt_estimate

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class _Admission:
    ticket: Ticket
    reservation: Reservation
    started: float
    reserved_tokens: int


def _counts_against_breaker(exc: ProviderError) -> bool:
    """A rejected request is the caller's fault, not a sign the provider is down."""
    return not isinstance(exc, ProviderRejected | CircuitOpen | InvalidOutput | TruncatedOutput)


class Gateway:
    def __init__(
        self,
        providers: list[Provider],
        *,
        settings: Settings,
        cache: ResponseCache | None = None,
        ledger: BudgetLedger | None = None,
        registry: CollectorRegistry | None = None,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        if not providers:
            raise InvalidRequest("the gateway needs at least one provider")
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        self.cache = cache
        self.ledger = ledger or BudgetLedger(
            settings.data_dir / "llm_budget.sqlite3", daily_usd=None, per_key_daily_usd=None
        )
        self.lanes = [self._lane(p, prices or {}) for p in providers]
        self.chain_signature = ",".join(f"{lane.name}={lane.model}" for lane in self.lanes)

    def _lane(self, provider: Provider, prices: Mapping[str, Price]) -> Lane:
        config = provider.config
        name, model = provider.name, provider.model

        def on_change(state: BreakerState) -> None:
            self.metrics.set_breaker(name, model, state)
            log_event(logger, "llm breaker state", logging.WARNING, provider=name, state=state.value)

        breaker = CircuitBreaker(
            name,
            failure_threshold=config.breaker_failure_threshold,
            cooldown_s=config.breaker_cooldown_s,
            on_change=on_change,
        )
        self.metrics.set_breaker(name, model, BreakerState.CLOSED)
        limiter = RateLimiter(config.rpm, config.tpm) if (config.rpm or config.tpm) else None
        price = config.price() or price_for(model, prices)
        return Lane(provider=provider, breaker=breaker, limiter=limiter, price=price)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        last_resort: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Gateway:
        """Build the configured chain; the extractive answerer is appended unless ``last_resort`` is False."""
        chain = load_chain(settings, environ)
        configs = list(chain.providers)
        if last_resort is None:
            last_resort = settings.llm_last_resort
        if last_resort and not any(c.type == "extractive" for c in configs):
            configs.append(extractive_config(settings))
        providers = [
            build_provider(c, embedding_model=settings.embedding_model, device=settings.embedding_device)
            for c in configs
        ]
        cache: ResponseCache | None = None
        if settings.cache_enabled:
            cache = RedisCache(settings.redis_url) if settings.redis_url else SQLiteCache(settings.cache_path)
        ledger = BudgetLedger(
            settings.budget_path,
            daily_usd=settings.budget_daily_usd,
            per_key_daily_usd=settings.budget_per_key_daily_usd,
        )
        return cls(
            providers, settings=settings, cache=cache, ledger=ledger, registry=registry, prices=chain.prices
        )

    # --- public API ---------------------------------------------------------------

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer ``request``; raises ``BudgetExceeded`` or ``ProviderUnavailable`` when nothing can."""
        started = time.perf_counter()
        lanes = self._lanes_for(request)
        key = self._cache_key(request)
        cached = await self._cache_lookup(key, request)
        if cached is not None:
            return cached
        deadline = time.monotonic() + self.settings.llm_deadline_s
        tally = _Tally()
        failures: list[str] = []
        errors: list[RagError] = []
        for lane in lanes:
            try:
                response = await self._answer_with(lane, request, deadline, tally)
            except RagError as exc:
                self._note_failure(lane, exc, failures, errors)
                continue
            return await self._finish(response, request, key, failures, started)
        raise self._nothing_answered(failures, errors)

    async def stream(self, request: LLMRequest) -> AsyncGenerator[StreamDelta, None]:
        """Text deltas, then one ``StreamDelta(done=True, response=...)``.

        A provider that fails before its first delta is replaced by the next one. Once text has
        been sent a break cannot be hidden, so it raises ``StreamInterrupted`` (or
        ``TruncatedOutput``) instead of ending as if the answer were whole.
        """
        started = time.perf_counter()
        lanes = self._lanes_for(request)
        key = self._cache_key(request)
        cached = await self._cache_lookup(key, request)
        if cached is not None:
            yield StreamDelta(text=cached.text)
            yield StreamDelta(done=True, response=cached)
            return
        deadline = time.monotonic() + self.settings.llm_deadline_s
        tally = _Tally()
        failures: list[str] = []
        errors: list[RagError] = []
        for lane in lanes:
            if lane.provider.local:
                try:
                    response = await self._answer_with(lane, request, deadline, tally)
                except RagError as exc:
                    self._note_failure(lane, exc, failures, errors)
                    continue
                response = await self._finish(response, request, key, failures, started)
                yield StreamDelta(text=response.text)
                yield StreamDelta(done=True, response=response)
                return
            call = self._prepare(lane, request, deadline, tally)
            try:
                if not lane.breaker.available():
                    raise self._circuit_open(lane)
                stream, first, admission = await self._retrying(call, self._open_stream)
            except RagError as exc:
                self._note_failure(lane, exc, failures, errors)
                continue
            outcome_recorded = False
            try:
                item = first
                while not isinstance(item, Completion):
                    yield StreamDelta(text=item)
                    item = await anext(stream)
                self._account_success(call, admission, item)
                outcome_recorded = True
            except (ProviderError, StopAsyncIteration, TimeoutError, OSError, ValueError) as exc:
                error = exc if isinstance(exc, ProviderError) else StreamInterrupted(provider=lane.name)
                self._account_failure(call, admission, error)
                outcome_recorded = True
                self.metrics.requests.labels("interrupted").inc()
                raise StreamInterrupted(
                    f"{lane.name}: the stream broke off after part of the answer was sent ({error.code})",
                    provider=lane.name,
                ) from exc
            finally:
                if not outcome_recorded:  # the consumer went away: not the provider's fault
                    lane.breaker.release(admission.ticket, "neutral")
                    self.ledger.settle(admission.reservation, 0.0)
                await stream.aclose()
            text = item.text
            if item.finish_reason == "length":
                self.metrics.requests.labels("truncated").inc()
                raise TruncatedOutput(
                    f"{lane.name}: the streamed answer hit max_tokens and is incomplete", provider=lane.name
                )
            if request.json_mode:
                try:
                    text = canonical_json(parse_grounded_answer(text))
                except ValueError as exc:
                    raise InvalidOutput(
                        f"{lane.name}: streamed JSON is invalid ({exc})", provider=lane.name
                    ) from exc
            response = self._response(lane, item, text, tally)
            response = await self._finish(response, request, key, failures, started)
            yield StreamDelta(done=True, response=response)
            return
        raise self._nothing_answered(failures, errors)

    def status(self) -> list[dict[str, Any]]:
        rows = []
        for lane in self.lanes:
            config = lane.provider.config
            rows.append(
                {
                    "name": lane.name,
                    "kind": lane.provider.kind,
                    "model": lane.model,
                    "local": lane.provider.local,
                    "breaker": lane.breaker.state.value,
                    "consecutive_failures": lane.breaker.consecutive_failures,
                    "available": lane.breaker.available(),
                    "rpm": config.rpm,
                    "tpm": config.tpm,
                    "price_input_per_mtok": lane.price.input_per_mtok,
                    "price_output_per_mtok": lane.price.output_per_mtok,
                }
            )
        return rows

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for lane in self.lanes:
            await lane.provider.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        self.ledger.close()

    # --- chain and cache --------------------------------------------------------------

    def _lanes_for(self, request: LLMRequest) -> list[Lane]:
        if not request.messages and not request.question.strip():
            raise InvalidRequest("an LLM request needs messages or a question")
        if request.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1")
        if not request.model:
            return self.lanes
        chosen = [lane for lane in self.lanes if request.model in (lane.name, lane.model)]
        if not chosen:
            raise InvalidRequest(f"no provider in the chain serves model {request.model!r}")
        return chosen + [lane for lane in self.lanes if lane.provider.local and lane not in chosen]

    def _cache_key(self, request: LLMRequest) -> str | None:
        if self.cache is None:
            return None
        if request.temperature > 0 and not self.settings.cache_nonzero_temperature:
            return None
        return cache_key(request, self.chain_signature)

    async def _cache_lookup(self, key: str | None, request: LLMRequest) -> LLMResponse | None:
        if key is None or self.cache is None:
            return None
        if request.bypass_cache:
            self.metrics.cache.labels("bypass").inc()
            return None
        started = time.perf_counter()
        raw = await self.cache.get(key)
        response = None
        if raw is not None:
            try:
                response = LLMResponse.model_validate_json(raw)
            except ValueError:
                response = None
        if response is None:
            self.metrics.cache.labels("miss").inc()
            return None
        self.metrics.cache.labels("hit").inc()
        self.metrics.cache_hits.labels(response.provider, response.model).inc()
        self.metrics.requests.labels("cached").inc()
        usage = response.usage.model_copy(update={"cost": 0.0})
        return response.model_copy(
            update={
                "cached": True,
                "usage": usage,
                "attempts": 0,
                "fallbacks": [],
                "latency_ms": (time.perf_counter() - started) * 1000,
            }
        )

    async def _finish(
        self, response: LLMResponse, request: LLMRequest, key: str | None, failures: list[str], started: float
    ) -> LLMResponse:
        response.fallbacks = list(failures)
        response.latency_ms = (time.perf_counter() - started) * 1000
        self.metrics.requests.labels("degraded" if failures else "answered").inc()
        # a degraded answer is transient: once the better provider is back it should answer
        if key is not None and self.cache is not None and not failures and response.finish_reason != "length":
            await self.cache.set(key, response.model_dump_json(), self.settings.cache_ttl_s)
        return response

    def _note_failure(self, lane: Lane, exc: RagError, failures: list[str], errors: list[RagError]) -> None:
        """Record why a lane was skipped; an exceeded budget ends the request when so configured."""
        failures.append(f"{lane.name}:{exc.code}")
        errors.append(exc)
        log_event(
            logger,
            "llm provider skipped",
            logging.DEBUG if isinstance(exc, CircuitOpen) else logging.WARNING,  # open: expected, and many
            provider=lane.name,
            model=lane.model,
            code=exc.code,
            error=redact(exc.message),
        )
        if isinstance(exc, BudgetExceeded) and self.settings.budget_action == "fail":
            self.metrics.requests.labels("budget_exceeded").inc()
            raise exc

    def _nothing_answered(self, failures: list[str], errors: list[RagError]) -> RagError:
        if errors and all(isinstance(e, BudgetExceeded) for e in errors):
            self.metrics.requests.labels("budget_exceeded").inc()
            error: RagError = BudgetExceeded(
                "the daily LLM budget is spent and no cheaper provider could answer", tried=failures
            )
        else:
            self.metrics.requests.labels("unavailable").inc()
            error = ProviderUnavailable(f"no provider could answer ({', '.join(failures)})", tried=failures)
        error.__cause__ = errors[-1] if errors else None
        return error

    # --- one provider ---------------------------------------------------------------

    def _prepare(self, lane: Lane, request: LLMRequest, deadline: float, tally: _Tally) -> _Call:
        prepared = request
        if request.json_mode and not any("json" in m.content.lower() for m in request.messages):
            # OpenAI's JSON mode rejects prompts that never mention JSON; others need telling anyway
            hint = Message(
                role="system", content=f"Reply with only a JSON object of the shape {JSON_SHAPE_HINT}."
            )
            prepared = request.model_copy(update={"messages": [hint, *request.messages]})
        max_tokens = max(1, min(request.max_tokens, lane.provider.config.max_tokens))
        return _Call(lane=lane, request=prepared, max_tokens=max_tokens, deadline=deadline, tally=tally)

    def _circuit_open(self, lane: Lane) -> CircuitOpen:
        self.metrics.calls.labels(lane.name, lane.model, CircuitOpen.code).inc()
        return CircuitOpen(f"{lane.name}: circuit open, skipped", provider=lane.name)

    async def _answer_with(
        self, lane: Lane, request: LLMRequest, deadline: float, tally: _Tally
    ) -> LLMResponse:
        if lane.provider.local:
            return await self._answer_locally(lane, request, tally)
        if not lane.breaker.available():
            raise self._circuit_open(lane)
        call = self._prepare(lane, request, deadline, tally)
        completion = await self._retrying(call, self._attempt)
        if completion.finish_reason == "length":
            roomier = min(call.max_tokens * 2, lane.provider.config.max_tokens)
            if roomier <= call.max_tokens:
                raise TruncatedOutput(
                    f"{lane.name}: output hit max_tokens={call.max_tokens}", provider=lane.name
                )
            call = _Call(lane=lane, request=call.request, max_tokens=roomier, deadline=deadline, tally=tally)
            completion = await self._retrying(call, self._attempt)
            if completion.finish_reason == "length":
                raise TruncatedOutput(
                    f"{lane.name}: output hit max_tokens={roomier} twice", provider=lane.name
                )
        text = completion.text
        if request.json_mode:
            text = await self._valid_json(call, completion)
        return self._response(lane, completion, text, tally)

    async def _answer_locally(self, lane: Lane, request: LLMRequest, tally: _Tally) -> LLMResponse:
        started = time.perf_counter()
        try:
            completion = await lane.provider.complete(request, max_tokens=request.max_tokens)
        except RagError as exc:
            self.metrics.calls.labels(lane.name, lane.model, exc.code).inc()
            raise
        except Exception as exc:  # a bug in a local provider must still end in a clear error
            self.metrics.calls.labels(lane.name, lane.model, "internal_error").inc()
            raise ProviderError(f"{lane.name} failed: {type(exc).__name__}", provider=lane.name) from exc
        self.metrics.calls.labels(lane.name, lane.model, "success").inc()
        self.metrics.latency.labels(lane.name, lane.model).observe(time.perf_counter() - started)
        tally.calls += 1
        return self._response(lane, completion, completion.text, tally)

    async def _valid_json(self, call: _Call, completion: Completion) -> str:
        lane = call.lane
        try:
            return canonical_json(parse_grounded_answer(completion.text))
        except ValueError as exc:
            reason = str(exc)
        self.metrics.calls.labels(lane.name, lane.model, "invalid_json").inc()
        log_event(logger, "llm invalid JSON, repairing", logging.WARNING, provider=lane.name, reason=reason)
        messages = [
            *call.request.messages,
            Message(role="assistant", content=completion.text[:8000]),
            Message(role="user", content=repair_instruction(reason)),
        ]
        repair = _Call(
            lane=lane,
            request=call.request.model_copy(update={"messages": messages}),
            max_tokens=call.max_tokens,
            deadline=call.deadline,
            tally=call.tally,
        )
        fixed = await self._retrying(repair, self._attempt)
        if fixed.finish_reason == "length":
            raise TruncatedOutput(f"{lane.name}: repaired JSON was cut off", provider=lane.name)
        try:
            return canonical_json(parse_grounded_answer(fixed.text))
        except ValueError as exc:
            raise InvalidOutput(
                f"{lane.name}: invalid JSON after one repair ({exc})", provider=lane.name
            ) from exc

    def _response(self, lane: Lane, completion: Completion, text: str, tally: _Tally) -> LLMResponse:
        return LLMResponse(
            text=text,
            provider=lane.name,
            model=completion.model or lane.model,
            finish_reason=completion.finish_reason,
            usage=tally.usage(),
            attempts=tally.calls,
        )

    # --- retries -------------------------------------------------------------------

    async def _retrying(self, call: _Call, attempt_fn: Callable[[_Call], Awaitable[T]]) -> T:
        """Run ``attempt_fn(call)`` under the retry policy (tenacity)."""
        lane = call.lane
        settings = self.settings

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                # the server's floor, plus a little jitter so waiting clients do not return together
                return float(retry_after) + random.uniform(0, min(0.25, 0.1 * float(retry_after)))
            ceiling = min(
                settings.llm_backoff_max_s, settings.llm_backoff_base_s * 2 ** (state.attempt_number - 1)
            )
            return random.uniform(0, ceiling)  # full jitter

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= lane.provider.config.max_attempts:
                return True
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None and retry_after > settings.llm_retry_after_cap_s:
                return True  # the provider asks for longer than we will wait: move on
            return time.monotonic() + state.upcoming_sleep >= call.deadline

        def before_sleep(state: RetryCallState) -> None:
            self.metrics.retries.labels(lane.name, lane.model).inc()
            exc = state.outcome.exception() if state.outcome else None
            log_event(
                logger,
                "llm retry",
                logging.INFO,
                provider=lane.name,
                attempt=state.attempt_number,
                sleep_s=round(state.upcoming_sleep, 3),
                code=getattr(exc, "code", type(exc).__name__),
            )

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await attempt_fn(call)
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def _admit(self, call: _Call) -> _Admission:
        """Deadline, rate limits, breaker and budget, in that order, before any byte is sent."""
        lane = call.lane
        remaining = call.remaining()
        if remaining <= 0:
            raise ProviderTimeout(f"{lane.name}: request deadline spent", provider=lane.name, retryable=False)
        reserved_tokens = 0
        if lane.limiter is not None:
            reserved_tokens = call.prompt_estimate + call.max_tokens
            if not await lane.limiter.acquire(
                reserved_tokens, min(lane.provider.config.rate_wait_s, remaining)
            ):
                self.metrics.calls.labels(lane.name, lane.model, "throttled").inc()
                raise ProviderRateLimited(
                    f"{lane.name}: client-side rpm/tpm limit reached", provider=lane.name, retryable=False
                )
        try:
            ticket = await lane.breaker.acquire(max(0.0, call.remaining()))
        except CircuitOpen:
            if lane.limiter is not None:
                lane.limiter.cancel(reserved_tokens)
            self.metrics.calls.labels(lane.name, lane.model, CircuitOpen.code).inc()
            raise
        reservation = Reservation(id="", day="")
        if self.ledger.enabled and (lane.price.input_per_mtok or lane.price.output_per_mtok):
            worst = lane.price.cost(call.prompt_estimate, call.max_tokens)
            maybe = self.ledger.reserve(worst, call.request.api_key_id)
            if maybe is None:
                lane.breaker.release(ticket, "neutral")
                if lane.limiter is not None:
                    lane.limiter.cancel(reserved_tokens)
                self.metrics.calls.labels(lane.name, lane.model, BudgetExceeded.code).inc()
                raise BudgetExceeded(
                    f"{lane.name}: a call could cost up to ${worst:.6f}, more than the daily budget has left",
                    provider=lane.name,
                )
            reservation = maybe
        return _Admission(
            ticket=ticket,
            reservation=reservation,
            started=time.perf_counter(),
            reserved_tokens=reserved_tokens,
        )

    async def _attempt(self, call: _Call) -> Completion:
        lane = call.lane
        admission = await self._admit(call)
        try:
            timeout = min(lane.provider.config.total_timeout_s, call.remaining())
            try:
                async with asyncio.timeout(timeout):
                    completion = await lane.provider.complete(call.request, max_tokens=call.max_tokens)
            except TimeoutError as exc:
                raise ProviderTimeout(
                    f"{lane.name}: no answer within {timeout:.1f}s", provider=lane.name
                ) from exc
        except ProviderError as exc:
            self._account_failure(call, admission, exc)
            raise
        except Exception as exc:
            error = ProviderError(f"{lane.name}: unexpected {type(exc).__name__}", provider=lane.name)
            self._account_failure(call, admission, error)
            raise error from exc
        except BaseException:  # cancelled: release what we hold, count nothing
            lane.breaker.release(admission.ticket, "neutral")
            self.ledger.settle(admission.reservation, 0.0)
            raise
        self._account_success(call, admission, completion)
        return completion

    async def _open_stream(
        self, call: _Call
    ) -> tuple[AsyncGenerator[str | Completion, None], str | Completion, _Admission]:
        """Open a stream and read up to its first item, so failures before any text can be retried."""
        lane = call.lane
        admission = await self._admit(call)
        stream = lane.provider.stream(call.request, max_tokens=call.max_tokens)
        try:
            timeout = min(lane.provider.config.total_timeout_s, call.remaining())
            try:
                async with asyncio.timeout(timeout):
                    first = await anext(stream)
            except TimeoutError as exc:
                raise ProviderTimeout(
                    f"{lane.name}: no stream within {timeout:.1f}s", provider=lane.name
                ) from exc
            except StopAsyncIteration as exc:
                raise StreamInterrupted(
                    f"{lane.name}: empty stream", provider=lane.name, retryable=True
                ) from exc
        except ProviderError as exc:
            self._account_failure(call, admission, exc)
            await stream.aclose()
            raise
        except BaseException:
            lane.breaker.release(admission.ticket, "neutral")
            self.ledger.settle(admission.reservation, 0.0)
            await stream.aclose()
            raise
        return stream, first, admission

    def _account_failure(self, call: _Call, admission: _Admission, exc: ProviderError) -> None:
        lane = call.lane
        call.tally.calls += 1
        lane.breaker.release(admission.ticket, "failure" if _counts_against_breaker(exc) else "neutral")
        self.ledger.settle(admission.reservation, 0.0)
        if lane.limiter is not None:
            lane.limiter.settle(admission.reserved_tokens, 0)
        self.metrics.calls.labels(lane.name, lane.model, exc.code).inc()
        self.metrics.latency.labels(lane.name, lane.model).observe(time.perf_counter() - admission.started)

    def _account_success(self, call: _Call, admission: _Admission, completion: Completion) -> None:
        lane = call.lane
        tally = call.tally
        estimated = completion.input_tokens is None or completion.output_tokens is None
        input_tokens = completion.input_tokens
        if input_tokens is None:
            input_tokens = call.prompt_estimate
        output_tokens = completion.output_tokens
        if output_tokens is None:
            output_tokens = estimate_text_tokens(completion.text, lane.model)
        cost = lane.price.cost(input_tokens, output_tokens)
        lane.breaker.release(admission.ticket, "success")
        self.ledger.settle(admission.reservation, cost)
        if lane.limiter is not None:
            lane.limiter.settle(admission.reserved_tokens, input_tokens + output_tokens)
        tally.calls += 1
        tally.input_tokens += input_tokens
        tally.output_tokens += output_tokens
        tally.cost += cost
        tally.estimated = tally.estimated or estimated
        outcome = "truncated" if completion.finish_reason == "length" else "success"
        labels = (lane.name, lane.model)
        self.metrics.calls.labels(*labels, outcome).inc()
        self.metrics.latency.labels(*labels).observe(time.perf_counter() - admission.started)
        self.metrics.tokens.labels(*labels, "in").inc(input_tokens)
        self.metrics.tokens.labels(*labels, "out").inc(output_tokens)
        if cost:
            self.metrics.cost.labels(*labels).inc(cost)
