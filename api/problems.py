"""Every failure as RFC 9457 ``application/problem+json``: one shape, a stable code, no internals.

Errors are raised anywhere as ``rag.errors.RagError``; only this module turns them into
responses. Framework errors (unknown route, wrong method, a body that does not parse or
validate) are mapped onto the same tree, and anything unexpected becomes a bare 500 whose
detail says nothing about the cause: tracebacks go to the log under the request id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RagError,
    RateLimited,
    TooLarge,
    Unauthorized,
    error_classes,
)
from rag.logs import redact, request_id_var

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "/problems/"
"""Problem ``type`` URIs are relative references to ``GET /problems/{code}``, which describes the code."""

_SAFE_EXTRAS = ("retry_after", "errors", "limit", "provider", "document_id", "job_id", "checks")


class Problem(BaseModel):
    """The body of every error response (RFC 9457, plus ``code`` and ``request_id``)."""

    type: str = Field(description="URI reference identifying the problem type")
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable error code")
    request_id: str | None = None
    retry_after: float | None = None
    errors: list[dict[str, Any]] | None = None


def problem_body(exc: RagError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + exc.code,
        "title": exc.title,
        "status": exc.status,
        "detail": redact(exc.message),
        "code": exc.code,
        "request_id": request_id if request_id is not None else request_id_var.get(),
    }
    for key in _SAFE_EXTRAS:
        if key in exc.extra and exc.extra[key] is not None:
            body[key] = exc.extra[key]
    return body


def problem_headers(exc: RagError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited) or (exc.status in (429, 503) and exc.extra.get("retry_after")):
        retry_after = getattr(exc, "retry_after", None) or exc.extra.get("retry_after") or 1
        headers["Retry-After"] = str(max(1, math.ceil(float(retry_after))))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="rag"'
    return headers


def problem_response(exc: RagError, request_id: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem_body(exc, request_id),
        status_code=exc.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem_headers(exc),
    )


def internal_error_response(request_id: str | None = None) -> JSONResponse:
    return problem_response(
        RagError("The server failed to handle this request; it has been logged."), request_id
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and why, without echoing the input back (it may be large or sensitive)."""
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type")),
        }
        for err in exc.errors()[:20]
    ]


def _from_http_exception(exc: StarletteHTTPException) -> RagError:
    cause = exc.__cause__
    if isinstance(cause, RagError):  # raised while FastAPI was reading the body
        return cause
    if exc.status_code == 404:
        return NotFound("No such endpoint")
    if exc.status_code == 405:
        return MethodNotAllowed("This endpoint does not accept that method")
    if exc.status_code == 413:
        return TooLarge("The request body is too large")
    if exc.status_code == 400:
        return InvalidRequest("The request body could not be parsed")
    if exc.status_code == 401:
        return Unauthorized()
    return InvalidRequest(str(exc.detail)) if 400 <= exc.status_code < 500 else RagError()


def install(app: FastAPI, on_problem: Callable[[RagError], None] | None = None) -> None:
    """Register the handlers that render every error as problem+json; ``on_problem`` sees each one."""

    def respond(exc: RagError) -> JSONResponse:
        if on_problem is not None:
            on_problem(exc)
        return problem_response(exc)

    async def on_rag_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RagError)
        if exc.status >= 500:
            log.warning("request failed: %s: %s", exc.code, redact(exc.message))
        return respond(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(x for x in first["loc"] if x != "body") or "request"
        return respond(InvalidRequest(f"{where}: {first['msg']}", errors=errors))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return respond(_from_http_exception(exc))

    app.add_exception_handler(RagError, on_rag_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for a route: each listed status answers with a Problem."""
    from http import HTTPStatus

    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def describe_code(code: str) -> dict[str, Any] | None:
    """The title and status of an error code, for ``GET /problems/{code}``."""
    for cls in error_classes():
        if cls.code == code:
            return {"code": cls.code, "title": cls.title, "status": cls.status}
    return None


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "describe_code",
    "error_responses",
    "install",
    "internal_error_response",
    "problem_body",
    "problem_response",
]
