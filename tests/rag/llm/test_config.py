"""The chain is built from settings, the providers file and the secrets file; keys never leak."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Literal

import pytest
from prometheus_client import CollectorRegistry

from rag.errors import ConfigurationError, ProviderUnavailable
from rag.llm.config import load_chain
from rag.llm.gateway import Gateway
from rag.llm.prices import price_for
from rag.llm.providers import (
    PROVIDER_TYPES,
    AnthropicConfig,
    Completion,
    ExtractiveConfig,
    OpenAIConfig,
    Provider,
    ProviderConfig,
    ProviderType,
    register,
)
from rag.llm.types import LLMRequest
from rag.settings import Settings
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ask, openai_entry, write_toml

SECRET = "sk-live-do-not-log-0123456789abcdef"


def test_default_chain_is_the_extractive_answerer(settings: Settings) -> None:
    gateway = Gateway.from_settings(settings, registry=CollectorRegistry())
    assert [(row["name"], row["kind"], row["available"]) for row in gateway.status()] == [
        ("extractive", "extractive", True)
    ]


def test_extractive_is_appended_as_last_resort(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(llm_chain="openai", openai_api_key=SECRET)
    names = [row["name"] for row in Gateway.from_settings(settings, registry=CollectorRegistry()).status()]
    assert names == ["openai", "extractive"]


def test_providers_file_declares_named_endpoints(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    providers = write_toml(
        tmp_path / "providers.toml",
        {
            "providers.vllm": {
                "base_url": "http://gpu:8000/v1",
                "model": "qwen",
                "read_timeout_s": 7,
                "rpm": 30,
            },
            "providers.groq": {
                "type": "openai",
                "base_url": "https://api.groq.com/openai/v1",
                "model": "llama",
                "api_key_env": "GROQ_KEY",
                "price_input_per_mtok": 0.05,
            },
            'prices."gpt-4o-mini"': {"input": 9.0, "output": 9.5},
        },
    )
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('vllm = "vllm-key-0123456789"\n')
    settings = make_settings(
        llm_chain="vllm, groq, openai", providers_file=providers, secrets_file=secrets, openai_api_key=SECRET
    )
    chain = load_chain(settings, environ={"GROQ_KEY": "gsk-0123456789"})
    vllm, groq, openai = chain.providers
    assert (
        isinstance(vllm, OpenAIConfig) and isinstance(groq, OpenAIConfig) and isinstance(openai, OpenAIConfig)
    )
    assert (vllm.type, vllm.model, vllm.read_timeout_s, vllm.rpm) == ("openai", "qwen", 7, 30)
    assert vllm.connect_timeout_s == settings.llm_connect_timeout_s
    assert vllm.api_key is not None and vllm.api_key.get_secret_value() == "vllm-key-0123456789"
    assert groq.api_key is not None and groq.api_key.get_secret_value() == "gsk-0123456789"
    assert openai.base_url == settings.openai_base_url and openai.model == settings.openai_model
    assert SECRET not in repr(openai) and SECRET not in str(openai.model_dump())
    assert price_for("gpt-4o-mini", chain.prices).input_per_mtok == 9.0
    assert price_for("gpt-4o-mini-2024-07-18").input_per_mtok == price_for("gpt-4o-mini").input_per_mtok


def test_env_style_provider(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(llm_chain="ollama")
    env = {"RAG_OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1", "RAG_OLLAMA_MODEL": "llama3.2"}
    (ollama,) = load_chain(settings, environ=env).providers
    assert isinstance(ollama, OpenAIConfig)
    assert (ollama.type, ollama.base_url, ollama.model, ollama.api_key) == (
        "openai",
        env["RAG_OLLAMA_BASE_URL"],
        "llama3.2",
        None,
    )


@pytest.mark.parametrize(
    ("chain", "file_tables", "message"),
    [
        ("nowhere", {}, "not declared"),
        ("openai", {}, "needs an API key"),
        ("anthropic", {}, "needs an API key"),
        (
            "x",
            {"providers.x": {"base_url": "http://h/v1", "model": "m", "api_key": "inline"}},
            "must not hold",
        ),
        ("x", {"providers.x": {"base_url": "http://h/v1", "model": "m", "type": "sdk"}}, "misconfigured"),
        ("x", {"providers.x": {"base_url": "http://h/v1", "model": "m", "colour": "red"}}, "misconfigured"),
        ("a,a", {}, "twice"),
        (" , ", {}, "names no provider"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    chain: str,
    file_tables: dict[str, dict[str, object]],
    message: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    providers = write_toml(tmp_path / "p.toml", file_tables)
    with pytest.raises(ConfigurationError, match=message):
        load_chain(make_settings(llm_chain=chain, providers_file=providers), environ={})


def test_unreadable_files_are_clear_errors(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_chain(make_settings(providers_file=tmp_path / "missing.toml"), environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[providers.x\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_chain(make_settings(providers_file=broken), environ={})


@pytest.mark.parametrize("secret", [SECRET, "plainkey0123456789xyz"])
def test_keys_never_reach_logs_or_errors(
    secret: str, fakes: list[FakeLLMServer], gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # a provider that echoes the key back in its error body, as some do
    fakes[0].mode({"kind": "status", "status": 401, "message": f"Incorrect API key provided: {secret}"})
    gateway = gateway_factory({"a": openai_entry(fakes[0], api_key_env="A_KEY")}, environ={"A_KEY": secret})

    async def main() -> None:
        async with gateway:
            with pytest.raises(ProviderUnavailable) as caught:
                await gateway.complete(ask())
        chain = [caught.value, caught.value.__cause__]
        assert all(secret not in str(e) for e in chain)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    assert fakes[0].calls()[0]["headers"]["authorization"] == f"Bearer {secret}"
    logged = caplog.text + " ".join(str(getattr(r, "fields", "")) for r in caplog.records)
    assert "provider_auth_failed" in logged
    assert secret not in logged
    assert secret not in str(gateway.status())


def test_each_provider_type_has_its_own_model(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    providers = write_toml(
        tmp_path / "providers.toml",
        {
            "providers.local": {"base_url": "http://h/v1", "model": "m", "json_format": "prompt"},
            "providers.claude": {
                "type": "anthropic",
                "base_url": "http://h",
                "model": "c",
                "api_key_env": "K",
            },
            "providers.quotes": {"type": "extractive", "max_sentences": 3},
        },
    )
    settings = make_settings(llm_chain="local,claude,quotes", providers_file=providers)
    local, claude, quotes = load_chain(settings, environ={"K": "sk-ant-0123456789"}).providers
    assert isinstance(local, OpenAIConfig) and local.json_format == "prompt"
    assert isinstance(claude, AnthropicConfig) and claude.anthropic_version
    assert isinstance(quotes, ExtractiveConfig) and quotes.max_sentences == 3
    # a field of another type is a mistake, not something silently ignored
    for table in (
        {"type": "extractive", "base_url": "http://h/v1"},
        {"type": "anthropic", "base_url": "http://h", "model": "c", "json_format": "prompt"},
    ):
        write_toml(providers, {"providers.x": table})
        with pytest.raises(ConfigurationError, match="misconfigured"):
            load_chain(make_settings(llm_chain="x", providers_file=providers), environ={})


def test_a_new_provider_type_is_one_registry_entry(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    class EchoConfig(ProviderConfig):
        type: Literal["echo"] = "echo"
        prefix: str = ""

    class EchoProvider(Provider):
        kind = "echo"
        local = True

        async def complete(self, request: LLMRequest, *, max_tokens: int) -> Completion:
            assert isinstance(self.config, EchoConfig)
            return Completion(text=self.config.prefix + request.question, finish_reason="stop", model="echo")

        async def stream(
            self, request: LLMRequest, *, max_tokens: int
        ) -> AsyncGenerator[str | Completion, None]:
            yield await self.complete(request, max_tokens=max_tokens)

    register("echo", ProviderType(EchoConfig, lambda config, _settings: EchoProvider(config)))
    try:
        providers = write_toml(tmp_path / "p.toml", {"providers.parrot": {"type": "echo", "prefix": "> "}})
        settings = make_settings(llm_chain="parrot", providers_file=providers)
        gateway = Gateway.from_settings(settings, registry=CollectorRegistry(), last_resort=False, environ={})

        async def main() -> str:
            async with gateway:
                return (await gateway.complete(ask("Where?"))).text

        assert asyncio.run(main()) == "> Where?"
    finally:
        PROVIDER_TYPES.pop("echo")
