"""Which providers make up the chain, and how each is reached, limited and priced.

Sources, most specific last: a built-in name's defaults from ``Settings`` (``RAG_OPENAI_*``,
``RAG_ANTHROPIC_*``; see ``providers.registry``), the providers file (TOML),
``RAG_<NAME>_BASE_URL|MODEL|API_KEY|TYPE`` for other names. Each provider is validated by its
type's own model (``OpenAIConfig``, ``AnthropicConfig``, ``ExtractiveConfig``), chosen by ``type``.
Keys come only from the environment or the secrets file and are held as ``SecretStr``.

Providers file::

    [providers.local]              # any name; used in RAG_LLM_CHAIN
    type = "openai"                # a registered type: openai (any compatible server) | anthropic | extractive
    base_url = "http://127.0.0.1:8080/v1"
    model = "qwen2.5-7b-instruct"
    api_key_env = "LOCAL_KEY"      # or a key named "local" / "LOCAL_KEY" in the secrets file
    read_timeout_s = 20
    rpm = 60
    tpm = 100000
    max_tokens = 1024              # ceiling per call
    price_input_per_mtok = 0.0
    price_output_per_mtok = 0.0

    [prices."gpt-4o-mini"]         # overrides the built-in price table
    input = 0.15
    output = 0.60

Secrets file (TOML): ``name = "key"`` where name is a provider name or an ``api_key_env`` name.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr, ValidationError

from rag.errors import ConfigurationError
from rag.llm.prices import Price
from rag.llm.providers import (
    PROVIDER_TYPES,
    ExtractiveConfig,
    HttpProviderConfig,
    ProviderConfig,
    provider_type,
)
from rag.settings import Settings

_HOSTS_NEEDING_KEYS = ("api.openai.com", "api.anthropic.com")


@dataclass
class ChainConfig:
    providers: list[ProviderConfig]
    prices: dict[str, Price] = field(default_factory=dict)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{what} {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{what} {path} is not valid TOML: {exc}") from exc


def _defaults(settings: Settings) -> dict[str, Any]:
    return {
        "connect_timeout_s": settings.llm_connect_timeout_s,
        "read_timeout_s": settings.llm_read_timeout_s,
        "total_timeout_s": settings.llm_total_timeout_s,
        "stream_idle_timeout_s": settings.llm_stream_idle_timeout_s,
        "max_attempts": settings.llm_max_attempts,
        "rate_wait_s": settings.llm_rate_wait_s,
        "max_tokens": max(settings.llm_max_tokens * 4, 1024),
        "breaker_failure_threshold": settings.breaker_failure_threshold,
        "breaker_cooldown_s": settings.breaker_cooldown_s,
    }


def parse_chain(chain: str) -> list[str]:
    names = [name.strip().lower() for name in chain.split(",") if name.strip()]
    if not names:
        raise ConfigurationError("RAG_LLM_CHAIN names no provider")
    if len(set(names)) != len(names):
        raise ConfigurationError(f"RAG_LLM_CHAIN lists a provider twice: {chain!r}")
    return names


def _prices(raw: Any) -> dict[str, Price]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigurationError("[prices] in the providers file must be a table of models")
    prices: dict[str, Price] = {}
    for model, entry in raw.items():
        try:
            prices[model] = Price(float(entry["input"]), float(entry["output"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise ConfigurationError(
                f"[prices.{model!r}] needs numeric 'input' and 'output' (USD per million tokens)"
            ) from exc
    return prices


def load_chain(settings: Settings, environ: Mapping[str, str] | None = None) -> ChainConfig:
    """Build the configured chain. ``environ`` holds the variables named by ``api_key_env`` and
    ``RAG_<NAME>_*`` for providers that ``Settings`` has no fields for (default: the process env)."""
    env = os.environ if environ is None else environ
    file_data = _read_toml(settings.providers_file, "providers file") if settings.providers_file else {}
    secrets = _read_toml(settings.secrets_file, "secrets file") if settings.secrets_file else {}
    declared = file_data.get("providers", {})
    if not isinstance(declared, dict):
        raise ConfigurationError("[providers] in the providers file must be a table of named providers")
    declared = {str(k).lower(): v for k, v in declared.items()}

    configs = [
        _one(name, settings, declared.get(name), secrets, env) for name in parse_chain(settings.llm_chain)
    ]
    return ChainConfig(providers=configs, prices=_prices(file_data.get("prices")))


def extractive_config(settings: Settings, name: str = "extractive") -> ExtractiveConfig:
    return ExtractiveConfig(name=name, type="extractive", model="extractive", **_defaults(settings))


def _from_env(name: str, env: Mapping[str, str], declared: bool) -> dict[str, Any]:
    """``RAG_<NAME>_*`` for a name that is not built in; it must be declared here or in the file."""
    prefix = f"RAG_{name.upper().replace('-', '_')}_"
    values: dict[str, Any] = {}
    for field_name, env_name in (("type", "TYPE"), ("base_url", "BASE_URL"), ("model", "MODEL")):
        if env.get(prefix + env_name):
            values[field_name] = env[prefix + env_name]
    if env.get(prefix + "API_KEY"):
        values["api_key"] = SecretStr(env[prefix + "API_KEY"])
    if not declared and "base_url" not in values:
        raise ConfigurationError(
            f"provider {name!r} in RAG_LLM_CHAIN is not declared: add [providers.{name}] to the "
            f"providers file or set {prefix}BASE_URL and {prefix}MODEL"
        )
    values.setdefault("type", "openai")
    return values


def _one(
    name: str,
    settings: Settings,
    table: Any,
    secrets: Mapping[str, Any],
    env: Mapping[str, str],
) -> ProviderConfig:
    if table is not None and not isinstance(table, dict):
        raise ConfigurationError(f"[providers.{name}] must be a table")
    values: dict[str, Any] = {"name": name, **_defaults(settings)}
    builtin = PROVIDER_TYPES[name].builtin if name in PROVIDER_TYPES else None
    if builtin is not None:
        values.update(type=name, **builtin(settings))
    else:
        values.update(_from_env(name, env, declared=table is not None))
    key: SecretStr | None = values.pop("api_key", None)
    if table:
        if "api_key" in table:
            raise ConfigurationError(
                f"[providers.{name}] must not hold an api_key: use api_key_env or the secrets file"
            )
        values.update(table)
    try:
        config = provider_type(str(values["type"])).config(**values)
    except (ValidationError, ConfigurationError) as exc:
        reason = exc.errors(include_url=False) if isinstance(exc, ValidationError) else exc.message
        raise ConfigurationError(f"provider {name!r} is misconfigured: {reason}") from exc
    if isinstance(config, HttpProviderConfig):
        return _with_key(config, key, secrets, env)
    return config


def _with_key(
    config: HttpProviderConfig, key: SecretStr | None, secrets: Mapping[str, Any], env: Mapping[str, str]
) -> HttpProviderConfig:
    if key is None:
        for candidate in (config.name, config.api_key_env):
            if candidate and isinstance(secrets.get(candidate), str):
                key = SecretStr(secrets[candidate])
                break
    if key is None and config.api_key_env and env.get(config.api_key_env):
        key = SecretStr(env[config.api_key_env])
    if not config.base_url or not config.model:
        raise ConfigurationError(f"provider {config.name!r} needs a base_url and a model")
    host = urlparse(config.base_url).hostname or ""
    if key is None and (config.key_required or host in _HOSTS_NEEDING_KEYS):
        raise ConfigurationError(
            f"provider {config.name!r} needs an API key: set RAG_{config.name.upper()}_API_KEY, "
            "api_key_env in the providers file, or a key in the secrets file"
        )
    return config.model_copy(update={"api_key": key})
