"""Bootstrap intervals: seeded, sensible, and honest about degenerate inputs."""

from __future__ import annotations

import numpy as np

from eval.stats import bootstrap_mean, bootstrap_statistic


def test_bootstrap_mean_is_seeded_and_brackets_the_mean() -> None:
    values = list(np.random.default_rng(1).uniform(size=200))
    a = bootstrap_mean(values, seed=7)
    b = bootstrap_mean(values, seed=7)
    assert a == b
    assert a is not None
    assert a.low < a.value < a.high
    # the standard error of a uniform(0,1) mean over 200 is ~0.02: a 95% interval is ~0.08 wide
    assert 0.04 < a.high - a.low < 0.12
    assert bootstrap_mean(values, seed=8) != a


def test_wider_interval_for_fewer_questions() -> None:
    values = [1.0, 0.0] * 100
    wide = bootstrap_mean(values[:20])
    narrow = bootstrap_mean(values)
    assert wide is not None and narrow is not None
    assert wide.high - wide.low > narrow.high - narrow.low


def test_degenerate_inputs() -> None:
    assert bootstrap_mean([]) is None
    one = bootstrap_mean([0.3])
    assert one is not None and (one.low, one.value, one.high, one.n) == (0.3, 0.3, 0.3, 1)
    same = bootstrap_mean([1.0] * 10)
    assert same is not None and same.low == same.high == 1.0


def test_paired_statistic() -> None:
    gold = [1.0, 1.0, 0.0, 0.0] * 25
    pred = [1.0, 0.0, 0.0, 0.0] * 25

    def accuracy(g: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(g == p))

    est = bootstrap_statistic([gold, pred], accuracy, n_resamples=300)
    assert est is not None
    assert est.value == 0.75
    assert est.low < 0.75 < est.high
