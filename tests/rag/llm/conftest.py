"""Fake providers as real processes, and a factory for gateways wired to them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rag.llm.clock import SYSTEM_CLOCK, Clock
from rag.llm.gateway import Gateway
from rag.settings import Settings
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.helpers import FAST, write_toml


@pytest.fixture(scope="session")
def fake_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[FakeLLMServer]]:
    logs = tmp_path_factory.mktemp("fake-llm")
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(lambda i: FakeLLMServer.start(logs / f"server{i}.log"), range(3)))
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def fakes(fake_pool: list[FakeLLMServer]) -> list[FakeLLMServer]:
    for server in fake_pool:
        server.reset()
    return fake_pool


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def gateway_factory(make_settings: Callable[..., Settings], tmp_path: Path) -> GatewayFactory:
    def build(
        providers: dict[str, dict[str, Any]],
        *,
        chain: str | None = None,
        last_resort: bool = False,
        secrets: dict[str, str] | None = None,
        prices: dict[str, dict[str, float]] | None = None,
        environ: dict[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        **overrides: Any,
    ) -> Gateway:
        tables = {f"providers.{name}": entry for name, entry in providers.items()}
        tables.update({f'prices."{model}"': price for model, price in (prices or {}).items()})
        options: dict[str, Any] = {**FAST, **overrides}
        options["providers_file"] = write_toml(tmp_path / "providers.toml", tables)
        options["llm_chain"] = chain or ",".join(providers)
        if secrets is not None:
            options["secrets_file"] = tmp_path / "secrets.toml"
            options["secrets_file"].write_text(
                "\n".join(f"{k} = {json.dumps(v)}" for k, v in secrets.items())
            )
        settings = make_settings(**options)
        return Gateway.from_settings(
            settings,
            registry=CollectorRegistry(),
            last_resort=last_resort,
            environ=environ or {},
            clock=clock,
        )

    return build
