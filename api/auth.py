"""API keys bound to tenants, and the tenant namespace every collection lives in.

Keys are kept only as SHA-256 digests, so a memory dump or a log line never holds one;
a key is named in logs and metrics by a short prefix of its digest. A tenant's
collection ``c`` is stored as ``"{tenant}::{c}"``: tenant and collection names may not
contain ``:``, so two tenants can never name the same internal collection. With auth
disabled (local use only) requests run in the empty namespace, which is where
``rag ingest`` on the command line writes, so the CLI and the local server share data.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigurationError, Forbidden, InvalidRequest, Unauthorized
from rag.settings import Settings

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
"""Tenant and collection names: no ':' (the namespace separator), no '/', no spaces."""

SEPARATOR = "::"
LOCAL_TENANT = "local"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``key_id`` is safe to log; ``namespace`` prefixes their collections."""

    key_id: str
    tenant: str
    admin: bool = False
    namespace: str = ""

    def internal(self, collection: str) -> str:
        """The index's name for this tenant's ``collection``."""
        if not NAME_RE.fullmatch(collection):
            raise InvalidRequest(
                f"invalid collection name {collection[:80]!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        return f"{self.namespace}{SEPARATOR}{collection}" if self.namespace else collection

    def owns(self, internal_collection: str) -> bool:
        if self.namespace:
            return internal_collection.startswith(self.namespace + SEPARATOR)
        return SEPARATOR not in internal_collection

    def public(self, internal_collection: str) -> str:
        """The collection name as this tenant knows it."""
        if self.namespace and internal_collection.startswith(self.namespace + SEPARATOR):
            return internal_collection[len(self.namespace) + len(SEPARATOR) :]
        return internal_collection


def _parse_pairs(text: str, source: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in re.split(r"[,\n]", text):
        item = raw.strip()
        if not item or item.startswith("#"):
            continue
        key, sep, tenant = item.rpartition(":")
        key, tenant = key.strip(), tenant.strip()
        if not sep or not key or not tenant:
            raise ConfigurationError(f"{source}: each entry must be 'key:tenant'")
        if not NAME_RE.fullmatch(tenant):
            raise ConfigurationError(
                f"{source}: invalid tenant name {tenant!r} (letters, digits, '.', '_', '-')"
            )
        if len(key) < 16:
            raise ConfigurationError(f"{source}: API keys must be at least 16 characters (tenant {tenant})")
        pairs[_digest(key)] = tenant
    return pairs


class KeyRing:
    """Looks up the principal behind a bearer token."""

    def __init__(self, tenants_by_digest: dict[str, str], admin_digest: str | None, disabled: bool) -> None:
        self._tenants = tenants_by_digest
        self._admin = admin_digest
        self.disabled = disabled

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys: dict[str, str] = {}
        if settings.api_keys is not None:
            keys.update(_parse_pairs(settings.api_keys.get_secret_value(), "RAG_API_KEYS"))
        if settings.api_keys_file is not None:
            path = Path(settings.api_keys_file)
            try:
                keys.update(_parse_pairs(path.read_text(encoding="utf-8"), str(path)))
            except OSError as exc:
                raise ConfigurationError(f"cannot read RAG_API_KEYS_FILE {path}: {exc.strerror}") from exc
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        if admin is not None and len(admin) < 16:
            raise ConfigurationError("RAG_ADMIN_KEY must be at least 16 characters")
        if not keys and admin is None and not settings.auth_disabled:
            raise ConfigurationError(
                "no API keys configured: set RAG_API_KEYS (key:tenant,...) or RAG_API_KEYS_FILE,"
                " or RAG_AUTH_DISABLED=true for local use"
            )
        return cls(keys, _digest(admin) if admin else None, settings.auth_disabled)

    @property
    def tenants(self) -> list[str]:
        return sorted(set(self._tenants.values()))

    def authenticate(self, token: str | None) -> Principal:
        if token:
            digest = _digest(token)
            if self._admin is not None and hmac.compare_digest(digest, self._admin):
                return Principal(key_id="admin-" + digest[:8], tenant="", admin=True)
            tenant = self._tenants.get(digest)
            if tenant is not None:
                return Principal(key_id=digest[:12], tenant=tenant, namespace=tenant)
        if self.disabled:
            return Principal(key_id=LOCAL_TENANT, tenant=LOCAL_TENANT, admin=True)
        if token:
            raise Unauthorized("The API key is not valid")
        raise Unauthorized("Send your API key in the Authorization header, as a Bearer token")


def require_tenant(principal: Principal) -> Principal:
    """Document and query endpoints act for one tenant; the admin key has none."""
    if principal.admin and principal.tenant == "":
        raise Forbidden("The admin key is for operations endpoints; use a tenant's API key here")
    return principal


def require_admin(principal: Principal) -> Principal:
    if not principal.admin:
        raise Forbidden("This endpoint needs the admin key")
    return principal


__all__ = ["LOCAL_TENANT", "SEPARATOR", "KeyRing", "Principal", "require_admin", "require_tenant"]
