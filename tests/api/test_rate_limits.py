"""Per-key rate limits: one contract for the in-process and the Redis limiter, and a key's
limit holding across API replicas that share a real ``redis-server``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry

from api.limits import RateLimiter, RateLimitMetrics, RedisRateLimiter, RequestLimiter
from rag.errors import RateLimited
from tests.api.conftest import ALPHA_KEY, KEYS, LiveServer, assert_problem
from tests.conftest import free_port
from tests.redis_server import RedisServer, running_redis

MakeLimiter = Callable[[int], RequestLimiter]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def _unique_prefix() -> str:
    """The module's server outlives a test: each limiter gets keys of its own."""
    return f"t{time.monotonic_ns()}:"


@pytest.fixture(params=["process", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> MakeLimiter:
    if request.param == "process":
        return RateLimiter
    url = request.getfixturevalue("redis_server").url
    prefix = _unique_prefix()
    return lambda per_minute: RedisRateLimiter(url, per_minute, prefix=prefix)


def _refused(limiter: RequestLimiter, key: str) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        limiter.check(key)
    return caught.value


def test_a_burst_of_the_limit_then_refused_saying_when_per_key(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(5)  # one token every 12 s
    for _ in range(5):
        limiter.check("alpha")
    refused = _refused(limiter, "alpha")
    assert refused.code == "rate_limited" and refused.retry_after == 12  # ceil of the wait
    for _ in range(5):
        limiter.check("beta")  # keys are independent
    _refused(limiter, "beta")


def test_the_bucket_refills_continuously(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(600)  # ten a second
    taken = 0
    with pytest.raises(RateLimited) as caught:
        while taken < 1000:  # the burst; a slow machine's burst may get a refilled token or two
            limiter.check("k")
            taken += 1
    assert 600 <= taken < 1000
    assert caught.value.retry_after == 1  # a wait of 0.1 s says 1: never 0
    time.sleep(0.35)  # three tokens back
    limiter.check("k")
    limiter.check("k")


def test_zero_switches_it_off(make_limiter: MakeLimiter) -> None:
    off = make_limiter(0)
    for _ in range(1000):
        off.check("k")


def test_two_replicas_spend_one_budget_per_key(redis_server: RedisServer) -> None:
    prefix = _unique_prefix()
    replicas = [RedisRateLimiter(redis_server.url, 10, prefix=prefix) for _ in range(2)]
    for n in range(10):
        replicas[n % 2].check("alpha-key")
    for replica in replicas:
        assert _refused(replica, "alpha-key").retry_after == 6
    replicas[0].check("beta-key")


def test_an_idle_keys_state_expires(redis_server: RedisServer) -> None:
    prefix = _unique_prefix()
    RedisRateLimiter(redis_server.url, 10, prefix=prefix).check("k")
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert 60 <= client.ttl(prefix + "k") <= 120  # a bucket is full again after 60 s
    finally:
        client.close()


def _fallbacks(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("rag_rate_limit_fallback_total", {"limiter": "requests"})


def test_redis_down_falls_back_to_this_replicas_own_limit_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="api.limits")
    registry = CollectorRegistry()
    with running_redis() as server:
        limiter = RedisRateLimiter(server.url, 3, retry_redis_after_s=0.5)
        registry.register(RateLimitMetrics({"requests": limiter}))
        for _ in range(3):
            limiter.check("k")
        _refused(limiter, "k")
        assert _fallbacks(registry) == 0
        server.stop()

    started = time.monotonic()
    for _ in range(3):
        limiter.check("k")  # fail open, to a fresh bucket of this replica's own
    assert _refused(limiter, "k").retry_after == 20  # ... which still limits
    assert time.monotonic() - started < 1, "a dead Redis costs one failed call, not one per request"
    assert limiter.failures == 1 and _fallbacks(registry) == 4
    assert caplog.text.count("rate limits per replica only: Redis unreachable") == 1

    with running_redis(port=server.port):  # back, empty
        time.sleep(0.6)  # past the back-off: Redis is asked again
        for _ in range(3):
            limiter.check("k")  # the local bucket is empty: these are Redis's tokens
        _refused(limiter, "k")
    assert _fallbacks(registry) == 4
    assert "rate limits shared again" in caplog.text


def test_redis_unreachable_from_the_start_still_serves() -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", 2)
    limiter.check("k")
    limiter.check("k")
    _refused(limiter, "k")
    assert limiter.failures == 1


@pytest.mark.slow
def test_a_keys_limit_holds_across_two_real_api_replicas(tmp_path: Path, redis_server: RedisServer) -> None:
    env = {"RAG_API_KEYS": KEYS, "RAG_RATE_LIMIT_PER_MINUTE": "10", "RAG_REDIS_URL": redis_server.url}
    servers = [LiveServer(tmp_path / f"replica-{n}" / "var", env, name=f"replica-{n}") for n in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.start(ready=False), servers))
        codes = []
        for n in range(10):
            with servers[n % 2].client(ALPHA_KEY) as http:
                codes.append(http.get("/v1/documents").status_code)
        assert codes == [200] * 10
        for server in servers:
            with server.client(ALPHA_KEY) as http:
                resp = http.get("/v1/documents")
            body = assert_problem(resp, 429, "rate_limited")
            assert int(resp.headers["Retry-After"]) >= 1 and body["detail"]
    finally:
        for server in servers:
            server.stop()
