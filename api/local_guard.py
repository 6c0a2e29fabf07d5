"""Requests only for our own host names; in the keyless local mode, only from our own pages.

With ``RAG_AUTH_DISABLED`` (what ``make run`` uses on 127.0.0.1) anything that can reach the
port can use the service, and a web page from another site can: a ``multipart/form-data``
upload needs no CORS preflight, so a page planted a document (a prompt-injection path into
answers), and DNS rebinding (a hostile name resolving to 127.0.0.1) could read and delete.
So the ``Host`` header must be one of ``RAG_ALLOWED_HOSTS`` (``*``: any, for a proxy that
checks it), and without API keys a state-changing request whose ``Sec-Fetch-Site`` or
``Origin`` shows another site is refused. With API keys a foreign page cannot know one; the
host check still applies. Plain ASGI, like ``api.middleware``, so streams pass unbuffered.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware import header_map
from api.problems import problem_response
from rag.errors import CrossSiteRequest, UnknownHost

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OWN_SITE = frozenset({"same-origin", "none"})
"""``Sec-Fetch-Site`` values of our own page and of a typed URL or bookmark."""


def _hostname(host: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``; ``[::1]:8000`` -> ``::1``; lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def parse_allowed_hosts(text: str) -> frozenset[str] | None:
    """``"localhost,127.0.0.1"`` -> the names; ``*`` -> ``None`` (any)."""
    names = {_hostname(n) for n in text.split(",") if n.strip()}
    return None if "*" in names else frozenset(names)


class LocalGuard:
    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None, keyless: bool) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.keyless = keyless

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = header_map(scope)
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            shown = host[:80]
            refused = UnknownHost(f"this service does not answer for host {shown!r}; see RAG_ALLOWED_HOSTS")
            await problem_response(refused)(scope, receive, send)
            return
        if self.keyless and scope["method"] not in _SAFE_METHODS and self._cross_site(headers, host):
            error = CrossSiteRequest(
                "another site's page may not change this service while it runs without API keys"
            )
            await problem_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _cross_site(headers: dict[str, str], host: str) -> bool:
        site = headers.get("sec-fetch-site")
        if site is not None:
            return site.lower() not in _OWN_SITE
        origin = headers.get("origin")
        if origin is None:
            return False  # not a browser, or one that sends neither (curl, the SDKs)
        return origin == "null" or urlsplit(origin).netloc.lower() != host.strip().lower()


__all__ = ["LocalGuard", "parse_allowed_hosts"]
