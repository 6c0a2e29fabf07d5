"""The one door to language models: cache, then providers in fallback order, each in its own lane.

A lane (``lane.py``) guards one provider: breaker, rate limits, budget, timeouts, accounting. The
gateway walks the lanes in order for ``complete`` and ``stream`` alike: retries (``retry.py``)
within one deadline per request, then one retry with more room for truncated output and one
repair of invalid JSON (``output.py``); after that the next lane answers. The extractive answerer
runs in-process as the last resort and ignores the deadline: a late answer beats none.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, aclosing
from typing import Any, TypeVar

from opentelemetry.trace import Span
from prometheus_client import CollectorRegistry

from rag.db import database
from rag.errors import InvalidRequest, ProviderError, RagError, StreamInterrupted
from rag.llm.budget import BudgetLedger
from rag.llm.cache import AnswerCache, RedisCache, ResponseCache, SQLiteCache
from rag.llm.call import Call
from rag.llm.clock import SYSTEM_CLOCK, Clock
from rag.llm.config import extractive_config, load_chain
from rag.llm.lane import Lane
from rag.llm.observer import Observer
from rag.llm.output import streamed_text, untruncated, valid_json
from rag.llm.prices import Price
from rag.llm.providers import Completion, Provider, build_provider
from rag.llm.retry import RetryPolicy, retrying
from rag.llm.trail import Trail
from rag.llm.types import LLMRequest, LLMResponse, StreamDelta
from rag.settings import Settings
from rag.tracing import tracer

T = TypeVar("T")
Answer = AsyncGenerator[str | LLMResponse, None]  # text deltas (streaming only), then the response


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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not providers:
            raise InvalidRequest("the gateway needs at least one provider")
        self.settings = settings
        self.clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.observer = Observer(self.registry)
        self.ledger = ledger or BudgetLedger(
            settings.data_dir / "llm_budget.sqlite3", daily_usd=None, per_key_daily_usd=None
        )
        self.lanes = [
            Lane.build(p, ledger=self.ledger, observer=self.observer, prices=prices or {}, clock=clock)
            for p in providers
        ]
        self.chain_signature = ",".join(f"{lane.name}={lane.model}" for lane in self.lanes)
        self.cache = cache
        self.answers = AnswerCache(
            cache,
            chain=self.chain_signature,
            ttl_s=settings.cache_ttl_s,
            nonzero_temperature=settings.cache_nonzero_temperature,
            observer=self.observer,
        )
        self.retry_policy = RetryPolicy.from_settings(settings)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        last_resort: bool | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Gateway:
        """Build the configured chain; the extractive answerer is appended unless ``last_resort`` is False."""
        chain = load_chain(settings, environ)
        configs = list(chain.providers)
        wanted = settings.llm_last_resort if last_resort is None else last_resort
        if wanted and not any(c.type == "extractive" for c in configs):
            configs.append(extractive_config(settings))
        cache: ResponseCache | None = None
        if settings.cache_enabled and settings.redis_url:
            cache = RedisCache(settings.redis_url)
        elif settings.cache_enabled:
            cache = SQLiteCache(settings.cache_path, clock=clock.wall)
        budgets = settings.budget_daily_usd is not None or settings.budget_per_key_daily_usd is not None
        ledger = BudgetLedger(
            database(settings, "llm_budget") if budgets else settings.budget_path,
            daily_usd=settings.budget_daily_usd,
            per_key_daily_usd=settings.budget_per_key_daily_usd,
            clock=clock.wall,
        )
        providers = [build_provider(c, settings) for c in configs]
        return cls(
            providers,
            settings=settings,
            cache=cache,
            ledger=ledger,
            registry=registry,
            prices=chain.prices,
            clock=clock,
        )

    # --- public API ---------------------------------------------------------------

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer ``request``; raises ``BudgetExceeded`` or ``ProviderUnavailable`` when nothing can."""
        async with aclosing(self._run(request, streaming=False)) as deltas:
            async for delta in deltas:
                if delta.response is not None:
                    return delta.response
        raise AssertionError("unreachable: _run ends with a response or raises")  # pragma: no cover

    async def stream(self, request: LLMRequest) -> AsyncGenerator[StreamDelta, None]:
        """Text deltas, then one ``StreamDelta(done=True, response=...)``.

        A provider that fails before its first delta is replaced by the next one. Once text has
        been sent a break cannot be hidden, so it raises ``StreamInterrupted`` (or
        ``TruncatedOutput``) instead of ending as if the answer were whole.
        """
        async with aclosing(self._run(request, streaming=True)) as deltas:
            async for delta in deltas:
                yield delta

    def status(self) -> list[dict[str, Any]]:
        return [lane.status() for lane in self.lanes]

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for lane in self.lanes:
            await lane.provider.aclose()
        await self.answers.aclose()
        self.ledger.close()

    # --- the one loop over the lanes -------------------------------------------------------

    async def _run(self, request: LLMRequest, *, streaming: bool) -> AsyncGenerator[StreamDelta, None]:
        lanes = self._lanes_for(request)
        deadline = self.clock.monotonic() + self.settings.llm_deadline_s
        trail = Trail(self.observer, deadline, fail_over_budget=self.settings.budget_action == "fail")
        key = self.answers.key(request)
        cached = await self.answers.lookup(key, request)
        if cached is not None:
            answer = _whole(cached, streaming)
        else:
            answer = await self._first_answer(lanes, request, trail, streaming)
        response: LLMResponse | None = None
        async with aclosing(answer):
            async for item in answer:
                if isinstance(item, LLMResponse):
                    response = item
                else:
                    yield StreamDelta(text=item)
        assert response is not None, "an answer ends with its response"
        if not response.cached:
            response = trail.finish(response)
            await self.answers.store(key, response)
        yield StreamDelta(done=True, response=response)

    async def _first_answer(
        self, lanes: list[Lane], request: LLMRequest, trail: Trail, streaming: bool
    ) -> Answer:
        """The first lane that gets to the point of answering; the others' errors go on the trail."""
        for lane in lanes:
            try:
                return await self._begin(lane, request, trail, streaming)
            except RagError as exc:
                trail.skip(lane, exc)
        raise trail.exhausted()

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
        return chosen + [lane for lane in self.lanes if lane.local and lane not in chosen]

    async def _begin(self, lane: Lane, request: LLMRequest, trail: Trail, streaming: bool) -> Answer:
        """Get ``lane`` to the point of answering; a ``RagError`` here means: try the next lane."""
        if lane.local:
            with _attempt_span(lane, 1) as span:
                completion = await lane.answer_locally(request, trail.tally)
                _record_tokens(span, completion)
            return _whole(trail.response(lane, completion, completion.text), streaming)
        if not lane.breaker.available():
            raise lane.circuit_open()
        call = lane.prepare(request, trail.deadline, trail.tally, self.clock)
        if not streaming:
            return _whole(await self._complete_on(lane, call, trail), streaming)
        opened = await self._retrying(lane, call, lambda: _opened(lane.stream(call)))
        return self._rest_of_stream(lane, call, trail, *opened)

    async def _complete_on(self, lane: Lane, call: Call, trail: Trail) -> LLMResponse:
        def run(c: Call) -> Awaitable[Completion]:
            return self._retrying(lane, c, lambda: lane.complete(c))

        call, completion = await untruncated(call, run, lane)
        text = completion.text
        if call.wants_json:
            text = await valid_json(call, completion, run, lane, self.observer)
        return trail.response(lane, completion, text)

    async def _rest_of_stream(
        self,
        lane: Lane,
        call: Call,
        trail: Trail,
        items: AsyncGenerator[str | Completion, None],
        first: str | Completion,
    ) -> Answer:
        """The stream after its first item: text already sent cannot be taken back, so breaks raise."""
        async with aclosing(items):
            item = first
            try:
                while not isinstance(item, Completion):
                    yield item
                    item = await anext(items)
            except ProviderError as exc:
                self.observer.record_request("interrupted")
                raise StreamInterrupted(
                    f"{lane.name}: the stream broke off after part of the answer was sent ({exc.code})",
                    provider=lane.name,
                ) from exc
        yield trail.response(lane, item, streamed_text(item, call, lane, self.observer))

    def _retrying(self, lane: Lane, call: Call, attempt: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        number = 0

        async def traced() -> T:
            nonlocal number
            number += 1
            with _attempt_span(lane, number) as span:
                result = await attempt()
                if isinstance(result, Completion):
                    _record_tokens(span, result)
                return result

        return retrying(
            traced,
            policy=self.retry_policy,
            max_attempts=lane.provider.config.max_attempts,
            time_left=call.remaining,
            on_retry=lambda number, wait, exc: self.observer.record_retry(lane, number, wait, exc),
        )


def _attempt_span(lane: Lane, number: int) -> AbstractContextManager[Span]:
    """One provider attempt as a span (a child of the request's ``llm`` span); errors mark it failed."""
    return tracer.start_as_current_span(
        "llm.attempt",
        attributes={
            "llm.provider": lane.name,
            "llm.model": lane.model,
            "llm.attempt": number,
            "llm.breaker": "none" if lane.local else lane.breaker.state.value,
        },
    )


def _record_tokens(span: Span, completion: Completion) -> None:
    span.set_attribute("llm.finish_reason", completion.finish_reason)
    if completion.input_tokens is not None:
        span.set_attribute("llm.input_tokens", completion.input_tokens)
    if completion.output_tokens is not None:
        span.set_attribute("llm.output_tokens", completion.output_tokens)


async def _opened(
    items: AsyncGenerator[str | Completion, None],
) -> tuple[AsyncGenerator[str | Completion, None], str | Completion]:
    """Read a stream up to its first item, so that failures before any text can be retried."""
    return items, await anext(items)


async def _whole(response: LLMResponse, streaming: bool) -> Answer:
    """A whole answer as an :data:`Answer` (its text as one delta when streaming)."""
    if streaming:
        yield response.text
    yield response
