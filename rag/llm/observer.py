"""The gateway's one observer: every metric and log line about calls, retries, breakers and caches.

The gateway and its lanes report what happened; this module alone decides how it is counted, so
a new metric or log field is one edit here, not a hunt through the call paths.
"""

from __future__ import annotations

import logging
from typing import Protocol

from prometheus_client import CollectorRegistry

from rag.errors import CircuitOpen, RagError
from rag.llm.breaker import BreakerState
from rag.llm.metrics import GatewayMetrics
from rag.llm.types import LLMResponse, Usage
from rag.logs import log_event, redact

logger = logging.getLogger("rag.llm.gateway")


class Labelled(Protocol):
    """What the observer needs to know of a lane."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...


class Observer:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.metrics = GatewayMetrics(registry)

    def record_call(
        self, lane: Labelled, outcome: str, usage: Usage | None = None, seconds: float | None = None
    ) -> None:
        """One provider call (or a refusal before one): ``outcome`` is success, truncated or a code."""
        labels = (lane.name, lane.model)
        self.metrics.calls.labels(*labels, outcome).inc()
        if seconds is not None:
            self.metrics.latency.labels(*labels).observe(seconds)
        if usage is not None:
            self.metrics.tokens.labels(*labels, "in").inc(usage.input_tokens)
            self.metrics.tokens.labels(*labels, "out").inc(usage.output_tokens)
            if usage.cost:
                self.metrics.cost.labels(*labels).inc(usage.cost)

    def record_retry(self, lane: Labelled, attempt: int, wait_s: float, error: RagError) -> None:
        self.metrics.retries.labels(lane.name, lane.model).inc()
        log_event(
            logger,
            "llm retry",
            logging.INFO,
            provider=lane.name,
            attempt=attempt,
            sleep_s=round(wait_s, 3),
            code=error.code,
        )

    def record_invalid_json(self, lane: Labelled, reason: str) -> None:
        self.record_call(lane, "invalid_json")
        log_event(logger, "llm invalid JSON, repairing", logging.WARNING, provider=lane.name, reason=reason)

    def record_request(self, outcome: str) -> None:
        """One gateway request: answered, degraded, cached, interrupted, truncated, budget_exceeded ..."""
        self.metrics.requests.labels(outcome).inc()

    def record_cache(self, result: str, response: LLMResponse | None = None) -> None:
        self.metrics.cache.labels(result).inc()
        if response is not None:
            self.metrics.cache_hits.labels(response.provider, response.model).inc()

    def record_breaker(self, lane: Labelled, state: BreakerState, *, initial: bool = False) -> None:
        self.metrics.set_breaker(lane.name, lane.model, state)
        if not initial:
            log_event(logger, "llm breaker state", logging.WARNING, provider=lane.name, state=state.value)

    def record_skip(self, lane: Labelled, error: RagError) -> None:
        log_event(
            logger,
            "llm provider skipped",
            logging.DEBUG if isinstance(error, CircuitOpen) else logging.WARNING,  # open: expected, and many
            provider=lane.name,
            model=lane.model,
            code=error.code,
            error=redact(error.message),
        )
