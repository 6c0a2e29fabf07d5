"""Seeded bootstrap confidence intervals, so a headline figure says how sure it is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric with its percentile-bootstrap interval over the questions."""

    value: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _degenerate(value: float, n: int) -> Estimate:
    return Estimate(value, value, value, n)


def bootstrap_mean(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> Estimate | None:
    """Mean with a percentile bootstrap CI; ``None`` for no values."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return None
    value = float(arr.mean())
    if arr.size < 2 or np.all(arr == arr[0]):
        return _degenerate(value, int(arr.size))
    res = stats.bootstrap(
        (arr,),
        np.mean,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Estimate(value, float(ci.low), float(ci.high), int(arr.size))


def bootstrap_statistic(
    columns: Sequence[Sequence[float]],
    statistic: Callable[..., float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Estimate | None:
    """CI of a statistic over paired per-question columns (e.g. abstention F1 over gold and prediction)."""
    arrays = [np.asarray(c, dtype=float) for c in columns]
    n = int(arrays[0].size) if arrays else 0
    if n == 0:
        return None
    value = float(statistic(*arrays))
    if n < 2 or all(np.all(a == a[0]) for a in arrays):
        return _degenerate(value, n)
    res = stats.bootstrap(
        tuple(arrays),
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    low, high = float(ci.low), float(ci.high)
    if np.isnan(low) or np.isnan(high):
        return _degenerate(value, n)
    return Estimate(value, low, high, n)
