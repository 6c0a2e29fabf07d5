"""The API's pure parts, in-process: keys and namespaces, the rate limiter, input checks, problem bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.auth import KeyRing, Principal
from api.limits import RateLimiter, check_question, check_top_k
from api.problems import describe_code, problem_body
from api.schemas import parse_metadata
from api.uploads import safe_filename
from rag.errors import ConfigurationError, InvalidRequest, ProviderError, RateLimited, Unauthorized
from rag.logs import redact
from rag.settings import Settings, load_settings

A = "a-key-0123456789abcdef"
B = "b-key-0123456789abcdef"


def ring(**overrides: object) -> KeyRing:
    return KeyRing.from_settings(load_settings(**overrides))


def test_keys_map_to_tenants_and_are_not_kept(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# comment\n{B}:beta\n")
    keyring = ring(api_keys=f"{A}:alpha", api_keys_file=keys_file, admin_key="admin-0123456789abcdef")
    assert keyring.authenticate(A).tenant == "alpha" and keyring.authenticate(B).tenant == "beta"
    assert keyring.authenticate("admin-0123456789abcdef").admin
    assert A not in repr(vars(keyring)) and B not in repr(vars(keyring))  # only digests are held
    assert keyring.authenticate(A).key_id != keyring.authenticate(B).key_id
    with pytest.raises(Unauthorized):
        keyring.authenticate("wrong-0123456789abcdef")
    with pytest.raises(Unauthorized):
        keyring.authenticate(None)


@pytest.mark.parametrize(
    "keys",
    ["short:alpha", f"{A}:", f"{A}:bad/tenant", f"{A}:a:b:c::x y", "no-separator-at-all-here"],
)
def test_bad_key_configuration_is_refused(keys: str) -> None:
    with pytest.raises(ConfigurationError):
        ring(api_keys=keys)


def test_no_keys_without_auth_disabled_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        ring()
    local = ring(auth_disabled=True).authenticate(None)
    assert local.namespace == "" and local.internal("default") == "default"


def test_namespaces_cannot_collide() -> None:
    alpha = Principal("k1", "alpha", namespace="alpha")
    other = Principal("k2", "alpha::x", namespace="alpha::x")  # impossible tenant name, still safe
    assert alpha.internal("docs") == "alpha::docs" and alpha.public("alpha::docs") == "docs"
    assert not other.owns(alpha.internal("docs"))
    assert not Principal("local", "local").owns("alpha::docs")
    for bad in ("", "a/b", "x::y", "../up", " padded", "a" * 65):
        with pytest.raises(InvalidRequest):
            alpha.internal(bad)


def test_rate_limiter_refills_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    for _ in range(60):
        limiter.check("k")
    with pytest.raises(RateLimited) as caught:
        limiter.check("k")
    assert caught.value.retry_after == 1
    limiter.check("other")  # per key
    now[0] += 1.0  # one token back per second at 60/min
    limiter.check("k")
    with pytest.raises(RateLimited):
        limiter.check("k")
    RateLimiter(0).check("k")  # 0 switches it off


def test_question_and_top_k_bounds() -> None:
    settings = Settings(max_question_chars=10, max_top_k=5, top_k=8)
    assert check_question("  why?  ", settings) == "why?"
    for bad in ("", "   ", "x" * 11):
        with pytest.raises(InvalidRequest):
            check_question(bad, settings)
    assert check_top_k(None, settings) == 5 and check_top_k(3, settings) == 3
    for bad_k in (0, 6):
        with pytest.raises(InvalidRequest):
            check_top_k(bad_k, settings)


def test_metadata_is_a_small_flat_object() -> None:
    assert parse_metadata(None) == {} and parse_metadata(" ") == {}
    assert parse_metadata('{"lang": "en", "year": 2020, "ok": true}') == {
        "lang": "en",
        "year": 2020,
        "ok": True,
    }
    for bad in (
        "[1]",
        "{bad",
        '{"a": {"b": 1}}',
        '{"a": NaN}',
        '{"bad key": 1}',
        '{"document_id": "x"}',
        '{"a": "' + "x" * 1025 + '"}',
    ):
        with pytest.raises(InvalidRequest):
            parse_metadata(bad)


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert safe_filename("...") == "upload" and safe_filename("a\x00b.txt") == "ab.txt"
    assert len(safe_filename("é" * 300).encode()) <= 255


def test_problem_body_redacts_secrets_and_drops_unknown_extras() -> None:
    exc = ProviderError(
        "vendor said: Authorization: Bearer sk-live-abcdef123456 rejected",
        provider="openai",
        holder="pid 1 on host",
    )
    body = problem_body(exc, "rid")
    assert "sk-live-abcdef123456" not in body["detail"] and body["provider"] == "openai"
    assert "holder" not in body and body["request_id"] == "rid" and body["type"] == "/problems/provider_error"
    assert describe_code("too_large") == {"code": "too_large", "title": "Too large", "status": 413}


def test_redaction_hides_secrets_and_spares_hints() -> None:
    assert redact("Authorization: Bearer sk-live-abcdef123456") == "Authorization: Bearer ***"
    assert redact("curl -H 'Authorization: Bearer 0123456789abcdef'") == "curl -H 'Authorization: Bearer ***'"
    assert redact('{"api_key": "abc", "password": "pw"}') == '{"api_key": "***", "password": "***"}'
    hint = "Send your API key in the Authorization header, as a Bearer token"
    assert redact(hint) == hint  # the 401's hint was printed as "Authorization: *** ***"
    assert describe_code("nope") is None
