"""Operational figures of a run: latency per stage, tokens, cost, cache hits, providers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95)) -> dict[str, float]:
    """``{"p50": .., "p95": ..}`` with linear interpolation (numpy's default)."""
    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    return {f"p{q:g}": float(np.percentile(arr, q)) for q in qs}


def latency_by_stage(timings: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per stage: p50, p95, mean (ms) and how many answers had that stage."""
    stages: dict[str, list[float]] = {}
    for timing in timings:
        for stage, ms in timing.items():
            stages.setdefault(stage, []).append(float(ms))
    return {
        stage: {**percentiles(values), "mean": float(np.mean(values)), "n": float(len(values))}
        for stage, values in stages.items()
    }


def mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def cost_per_100(costs: Sequence[float]) -> float | None:
    """What 100 answers cost at the observed mean (currency of the price table)."""
    return 100.0 * float(np.mean(costs)) if len(costs) else None


def cache_hit_rate(cached: Sequence[bool]) -> float | None:
    return sum(cached) / len(cached) if cached else None


def provider_counts(providers: Sequence[str | None]) -> dict[str, int]:
    """Which provider answered how often; answers no provider gave count as ``none``."""
    return dict(Counter(p or "none" for p in providers).most_common())
