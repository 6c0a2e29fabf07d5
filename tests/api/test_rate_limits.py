"""Per-key rate limits: one contract for the in-process and the Redis limiter, and a key's
limit holding across API replicas that share a real ``redis-server``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.limits import RateLimiter, RedisRateLimiter, RequestLimiter
from deploy.engines import RedisServer
from rag.errors import RateLimited
from tests.api.conftest import ALPHA_KEY, KEYS, LiveServer, assert_problem


@pytest.fixture(params=["process", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> Iterator[object]:
    if request.param == "process":
        yield RateLimiter
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"t{time.monotonic_ns()}:"
        yield lambda per_minute: RedisRateLimiter(url, per_minute, prefix=prefix)


def test_a_burst_of_the_limit_then_refused_then_refilled_per_key(make_limiter: object) -> None:
    limiter: RequestLimiter = make_limiter(600)  # type: ignore[operator]  # 10 a second
    for _ in range(600):
        limiter.check("k")
    with pytest.raises(RateLimited) as caught:
        limiter.check("k")
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    limiter.check("other")  # keys are independent
    time.sleep(0.35)  # about 3 tokens back
    limiter.check("k")
    limiter.check("k")
    off: RequestLimiter = make_limiter(0)  # type: ignore[operator]
    for _ in range(1000):
        off.check("k")  # 0 switches it off


def test_two_replicas_spend_one_budget_per_key(redis_url: str) -> None:
    replicas = [RedisRateLimiter(redis_url, 10, prefix="shared:") for _ in range(2)]
    for n in range(10):
        replicas[n % 2].check("alpha-key")
    for replica in replicas:
        with pytest.raises(RateLimited):
            replica.check("alpha-key")
    replicas[0].check("beta-key")


def test_redis_down_lets_requests_through_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    limiter = RedisRateLimiter(server.url, 2)
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(RateLimited):
        limiter.check("k")
    server.kill()
    started = time.monotonic()
    for _ in range(20):
        limiter.check("k")  # fail open, and only the first call waits for the dead socket
    assert time.monotonic() - started < 2
    assert limiter.failures == 1
    assert "rate limits not enforced" in caplog.text


@pytest.mark.slow
def test_a_keys_limit_holds_across_two_real_api_replicas(tmp_path: Path, redis_url: str) -> None:
    env = {"RAG_API_KEYS": KEYS, "RAG_RATE_LIMIT_PER_MINUTE": "10", "RAG_REDIS_URL": redis_url}
    servers = [LiveServer(tmp_path / f"replica-{n}" / "var", env, name=f"replica-{n}") for n in range(2)]
    try:
        for server in servers:
            server.start(ready=False)
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
