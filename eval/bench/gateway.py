"""Gateway overhead per call: the same request through the gateway and as one direct httpx call.

Both go to the same fake OpenAI-compatible server (a real process on 127.0.0.1), interleaved so
machine load hits both alike. Overhead = gateway latency minus direct latency, per pair.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from eval.fake_llm import fake_llm_server
from rag.llm.gateway import Gateway
from rag.llm.types import LLMRequest, Message
from rag.settings import load_settings

_PROMPT = "Answer from the sources and cite them as [n].\n\nSources:\n" + "\n".join(
    f"[{i}] The Eiffel Tower is a wrought-iron lattice tower in Paris, finished in 1889." for i in range(8)
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values_ms), 3),
        "p95_ms": round(_percentile(values_ms, 0.95), 3),
        "mean_ms": round(statistics.fmean(values_ms), 3),
    }


def _request(question: str) -> LLMRequest:
    return LLMRequest(
        messages=[Message(role="system", content=_PROMPT), Message(role="user", content=question)],
        question=question,
        max_tokens=256,
    )


async def _measure(base_url: str, workdir: Path, calls: int, warmup: int) -> dict[str, Any]:
    providers = workdir / "providers.toml"
    providers.write_text(
        f'[providers.bench]\ntype = "openai"\nbase_url = "{base_url}"\nmodel = "gpt-4o-mini"\n'
    )
    common = {"providers_file": providers, "llm_chain": "bench"}
    plain = Gateway.from_settings(
        load_settings(data_dir=workdir / "plain", cache_enabled=False, **common),
        last_resort=False,
        environ={},
    )
    cached = Gateway.from_settings(
        load_settings(data_dir=workdir / "cached", cache_enabled=True, **common),
        last_resort=False,
        environ={},
    )
    direct_client = httpx.AsyncClient(timeout=30)
    url = base_url.rstrip("/") + "/chat/completions"

    async def direct(question: str) -> float:
        started = time.perf_counter()
        request = _request(question)
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        response = await direct_client.post(url, json=body)
        response.raise_for_status()
        assert response.json()["choices"][0]["message"]["content"]
        return (time.perf_counter() - started) * 1000

    async def through(gateway: Gateway, question: str) -> float:
        started = time.perf_counter()
        response = await gateway.complete(_request(question))
        assert response.text and not response.fallbacks
        return (time.perf_counter() - started) * 1000

    samples: dict[str, list[float]] = {"direct": [], "gateway": [], "gateway_cache_miss": [], "cache_hit": []}
    try:
        for i in range(warmup + calls):
            question = f"When was the Eiffel Tower finished? ({i})"
            timings = {
                "direct": await direct(question),
                "gateway": await through(plain, question),
                "gateway_cache_miss": await through(cached, question),
                "cache_hit": await through(cached, question),
            }
            if i >= warmup:
                for name, value in timings.items():
                    samples[name].append(value)
    finally:
        await direct_client.aclose()
        await plain.aclose()
        await cached.aclose()

    overhead = [g - d for g, d in zip(samples["gateway"], samples["direct"], strict=True)]
    overhead_cached = [g - d for g, d in zip(samples["gateway_cache_miss"], samples["direct"], strict=True)]
    return {
        "calls": calls,
        "direct": _summary(samples["direct"]),
        "gateway": _summary(samples["gateway"]),
        "gateway_with_cache_miss": _summary(samples["gateway_cache_miss"]),
        "cache_hit": _summary(samples["cache_hit"]),
        "overhead_p50_ms": round(statistics.median(overhead), 3),
        "overhead_p95_ms": round(_percentile(overhead, 0.95), 3),
        "overhead_with_cache_miss_p50_ms": round(statistics.median(overhead_cached), 3),
        "overhead_with_cache_miss_p95_ms": round(_percentile(overhead_cached, 0.95), 3),
        "goal_p50_ms": 2.0,
    }


def run_gateway_bench(out: dict[str, Any], *, calls: int = 300, warmup: int = 30) -> None:
    """Measure and write the figures into ``out["gateway"]``."""
    fake = fake_llm_server()
    with tempfile.TemporaryDirectory(prefix="rag-bench-gateway-") as tmp:
        server = fake.FakeLLMServer.start(Path(tmp) / "server.log")
        try:
            out["gateway"] = asyncio.run(_measure(server.openai_url, Path(tmp), calls, warmup))
        finally:
            server.stop()


if __name__ == "__main__":
    results: dict[str, Any] = {}
    run_gateway_bench(results, calls=int(sys.argv[1]) if len(sys.argv) > 1 else 300)
    print(json.dumps(results, indent=2))
