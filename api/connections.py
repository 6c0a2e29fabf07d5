"""Slow clients cannot hold connections: a deadline for each request's head, a cap on connections.

uvicorn times out idle keep-alive connections but not a client that opens a connection and
sends its request line and headers a byte at a time (slowloris): measured here, one such
connection stayed open for as long as the client kept dribbling. The protocol below is
uvicorn's own, plus a timer from the connection's start (and from the end of each response)
to the moment a request's head is complete; past ``RAG_HEADER_TIMEOUT_S`` the connection is
closed. A slow *body* is the middleware's job (``RAG_BODY_IDLE_TIMEOUT_S``, 408), and the
number of connections is uvicorn's ``limit_concurrency`` (``RAG_MAX_CONNECTIONS``, 503 past it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rag.logs import log_event

try:  # the implementation uvicorn picks itself ("auto"): httptools when it is installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - uvicorn without its [standard] extra
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

log = logging.getLogger(__name__)


def protocol_with_header_deadline(header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class, closing a connection whose request head is not complete
    ``header_timeout_s`` after the connection opened or the previous response ended."""

    class HeaderDeadlineProtocol(_Base):
        _head_timer: asyncio.TimerHandle | None = None
        _waiting_since_cycle: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._head_timer is not None and self.cycle is not self._waiting_since_cycle:
                self._disarm()  # a new request's head is complete

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._waiting_since_cycle = self.cycle
            self._head_timer = self.loop.call_later(header_timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expired(self) -> None:
            self._head_timer = None
            if self.cycle is self._waiting_since_cycle and not self.transport.is_closing():
                log_event(log, "closed a connection whose request head was too slow", client=str(self.client))
                self.transport.close()

    return HeaderDeadlineProtocol


__all__ = ["protocol_with_header_deadline"]
