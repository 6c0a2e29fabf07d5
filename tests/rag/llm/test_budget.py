"""Budgets: reserve the worst case, settle after, atomically; degrade or fail as configured."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rag.errors import BudgetExceeded
from rag.llm.budget import BudgetLedger
from rag.llm.usage import estimate_prompt_tokens
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ask, openai_entry

PRICE_IN, PRICE_OUT, MAX_TOKENS = 2.0, 8.0, 40


def _worst_case() -> tuple[int, float]:
    """Tokens and cost one request can use at most; the fake reports exactly this as its usage."""
    prompt = estimate_prompt_tokens(ask().messages, "paid-model")
    return prompt, (prompt * PRICE_IN + MAX_TOKENS * PRICE_OUT) / 1e6


def _paid_and_free(fakes: list[FakeLLMServer]) -> dict[str, dict[str, object]]:
    prompt, _ = _worst_case()
    fakes[0].mode({"kind": "ok", "usage": {"prompt_tokens": prompt, "completion_tokens": MAX_TOKENS}})
    paid = openai_entry(
        fakes[0], model="paid-model", price_input_per_mtok=PRICE_IN, price_output_per_mtok=PRICE_OUT
    )
    free = openai_entry(fakes[1], model="local-model", price_input_per_mtok=0.0, price_output_per_mtok=0.0)
    return {"paid": paid, "free": free}


def test_50_concurrent_requests_with_a_budget_for_10(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    _, cost = _worst_case()
    gateway = gateway_factory(_paid_and_free(fakes), budget_daily_usd=cost * 10.5)

    async def main() -> list[str]:
        async with gateway:
            responses = await asyncio.gather(
                *(gateway.complete(ask(max_tokens=MAX_TOKENS)) for _ in range(50))
            )
            assert gateway.ledger.spent_today() <= cost * 10.5
        return [r.provider for r in responses]

    providers = asyncio.run(main())
    paid_calls = fakes[0].count()
    assert paid_calls == 10, "exactly the budgeted number of calls reach the paid provider"
    assert providers.count("paid") == paid_calls
    assert providers.count("free") == 50 - paid_calls


def test_budget_action_fail_raises_budget_exceeded(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    _, cost = _worst_case()
    gateway = gateway_factory(_paid_and_free(fakes), budget_daily_usd=cost * 2.5, budget_action="fail")

    async def main() -> None:
        async with gateway:
            for _ in range(2):
                assert (await gateway.complete(ask(max_tokens=MAX_TOKENS))).provider == "paid"
            with pytest.raises(BudgetExceeded):
                await gateway.complete(ask(max_tokens=MAX_TOKENS))

    asyncio.run(main())
    assert (fakes[0].count(), fakes[1].count()) == (2, 0)


def test_spend_survives_a_restart(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    _, cost = _worst_case()
    providers = _paid_and_free(fakes)

    async def spend(n: int) -> list[str]:
        gateway = gateway_factory(providers, budget_daily_usd=cost * 3.5)
        async with gateway:
            return [(await gateway.complete(ask(max_tokens=MAX_TOKENS))).provider for _ in range(n)]

    assert asyncio.run(spend(2)) == ["paid", "paid"]
    assert asyncio.run(spend(2)) == ["paid", "free"], "the second process must see the first one's spend"


def test_per_key_budgets_are_separate(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    _, cost = _worst_case()
    gateway = gateway_factory(_paid_and_free(fakes), budget_per_key_daily_usd=cost * 1.5)

    async def main() -> list[str]:
        async with gateway:
            return [
                (await gateway.complete(ask(max_tokens=MAX_TOKENS, api_key_id=key))).provider
                for key in ("alice", "alice", "bob")
            ]

    assert asyncio.run(main()) == ["paid", "free", "paid"]


def test_ledger_reserve_settle_and_release(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "b.sqlite3", daily_usd=1.0, per_key_daily_usd=None)
    first = ledger.reserve(0.6)
    assert first is not None
    assert ledger.reserve(0.6) is None, "held reservations count against the budget"
    ledger.settle(first, 0.25)
    assert ledger.spent_today() == pytest.approx(0.25)
    second = ledger.reserve(0.7)
    assert second is not None
    ledger.settle(second, 0.0)  # a failed call costs nothing and frees its hold
    assert ledger.reserve(0.75) is not None
    ledger.close()


def test_two_replicas_on_postgresql_share_one_budget(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory, pg_url: str, tmp_path: Path
) -> None:
    """50 concurrent calls split across two gateways, each with its own data directory and one
    PostgreSQL database: the budget for 10 lets exactly 10 reach the paid provider."""
    _, cost = _worst_case()
    replicas = [
        gateway_factory(
            _paid_and_free(fakes),
            budget_daily_usd=cost * 10.5,
            database_url=pg_url,
            data_dir=tmp_path / f"replica-{n}",
        )
        for n in range(2)
    ]

    async def main() -> list[str]:
        async with replicas[0], replicas[1]:
            responses = await asyncio.gather(
                *(replicas[i % 2].complete(ask(max_tokens=MAX_TOKENS)) for i in range(50))
            )
            assert replicas[0].ledger.spent_today() == pytest.approx(replicas[1].ledger.spent_today())
            assert replicas[0].ledger.spent_today() <= cost * 10.5
        return [r.provider for r in responses]

    providers = asyncio.run(main())
    assert fakes[0].count() == 10, "exactly the budgeted number of calls reach the paid provider"
    assert providers.count("paid") == 10 and providers.count("free") == 40
    assert not (tmp_path / "replica-0" / "llm_budget.sqlite3").exists()  # the spend is in the database
