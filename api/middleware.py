"""One ASGI middleware around every request: request id, body limit, metrics, access log, last-resort 500.

It is plain ASGI rather than ``BaseHTTPMiddleware`` so streamed answers pass through
unbuffered, and it catches what nothing else did, so even an unexpected failure is a
problem+json body with the request id, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import JSON_BODY_LIMIT, MAX_FILES_PER_UPLOAD
from api.metrics import ApiMetrics
from api.problems import internal_error_response, problem_response
from rag.errors import RequestTimeout, TooLarge
from rag.logs import log_event, request_id_var

log = logging.getLogger("rag.api")

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
UPLOAD_PATH = "/v1/documents"


def header_map(scope: Scope) -> dict[str, str]:
    """An ASGI request's headers by lower-case name (the last of a repeated one)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class RequestContext:
    def __init__(
        self, app: ASGIApp, metrics: ApiMetrics, max_upload_bytes: int, body_idle_timeout_s: float
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.upload_limit = max_upload_bytes * MAX_FILES_PER_UPLOAD + 1024 * 1024
        self.body_idle_timeout_s = body_idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = header_map(scope)
        offered = headers.get(REQUEST_ID_HEADER.lower(), "")
        request_id = offered if _CLIENT_ID.fullmatch(offered) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = [500]
        response_started = [False]
        method = scope["method"]
        limit = self.upload_limit if scope["path"] == UPLOAD_PATH else JSON_BODY_LIMIT

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        received = [0]
        body_done = [False]

        async def counted_receive() -> Message:
            if body_done[0]:  # later calls wait for a disconnect (a streamed answer): not timed
                return await receive()
            try:  # a body that stops arriving holds a connection and a task: not for long
                message = await asyncio.wait_for(receive(), self.body_idle_timeout_s)
            except TimeoutError:
                raise RequestTimeout(
                    f"no part of the request body arrived for {self.body_idle_timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise TooLarge(f"the request body is larger than {limit} bytes")
                body_done[0] = not message.get("more_body", False)
            return message

        self.metrics.in_flight.inc()
        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                await problem_response(TooLarge(f"the request body is larger than {limit} bytes"))(
                    scope, receive, send_with_id
                )
            else:
                await self.app(scope, counted_receive, send_with_id)
        except (TooLarge, RequestTimeout) as exc:
            if not response_started[0]:
                await problem_response(exc)(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", method, scope["path"])
            if not response_started[0]:
                await internal_error_response(request_id)(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            log_event(
                log,
                "request",
                logging.INFO if status[0] < 500 else logging.WARNING,
                method=method,
                path=route,
                status=status[0],
                ms=round(elapsed * 1000, 1),
                key=_key_id(scope),
            )
            request_id_var.reset(token)


def _route_template(scope: Scope) -> str:
    """The route's template (``/v1/jobs/{job_id}``), so ids never become metric labels."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def _key_id(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    principal = state.get("principal") if isinstance(state, dict) else None
    return getattr(principal, "key_id", None)


__all__ = ["REQUEST_ID_HEADER", "RequestContext"]
