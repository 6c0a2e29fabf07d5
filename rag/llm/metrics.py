"""Prometheus metrics of the gateway, registered on a registry the caller owns (tests use their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rag.llm.breaker import BreakerState

BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["provider", "model"]
        self.registry = registry
        self.calls = Counter(
            "rag_llm_calls",
            "Calls to a provider by outcome (success or an error code)",
            [*labels, "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "rag_llm_call_latency_seconds",
            "Latency of one provider call",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "rag_llm_tokens", "Tokens in and out", [*labels, "direction"], registry=registry
        )
        self.cost = Counter("rag_llm_cost_usd", "Spend in USD", labels, registry=registry)
        self.retries = Counter(
            "rag_llm_retries", "Retries after a retryable failure", labels, registry=registry
        )
        self.breaker = Gauge(
            "rag_llm_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            labels,
            registry=registry,
        )
        self.cache = Counter(
            "rag_llm_cache_lookups",
            "Response cache lookups by result (hit, miss)",
            ["result"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "rag_llm_cache_hits", "Cache hits by the provider that made the answer", labels, registry=registry
        )
        self.requests = Counter(
            "rag_llm_requests",
            "Gateway requests by outcome (answered, degraded, cached, budget_exceeded, unavailable)",
            ["outcome"],
            registry=registry,
        )

    def set_breaker(self, provider: str, model: str, state: BreakerState) -> None:
        self.breaker.labels(provider, model).set(BREAKER_VALUE[state])
