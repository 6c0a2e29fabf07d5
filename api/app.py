"""The FastAPI application; serve it with ``rag serve`` or ``uvicorn --factory api.app:create_app``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from api import problems
from api.local_guard import LocalGuard, parse_allowed_hosts
from api.mcp import McpEndpoint
from api.middleware import RequestContext
from api.routes import chat, conversations, documents, jobs, ops, pages, query
from api.service import Service
from rag.settings import Settings, load_settings
from rag.tracing import configure_tracing

DESCRIPTION = """Answers questions from the documents you upload, with citations (document, pages, snippet).

Authenticate with `Authorization: Bearer KEY`; every collection belongs to the key's tenant.
Every error is `application/problem+json` (RFC 9457) with a stable `code` and the `request_id`
that is also in the `X-Request-ID` response header and the server log."""


def create_app(settings: Settings | None = None, *, registry: Any = None) -> FastAPI:
    """Build the app; nothing is opened until start-up. ``registry`` isolates metrics (tests)."""
    settings = settings or load_settings()
    service = Service(settings, registry)
    mcp = McpEndpoint(service)  # MCP clients: streamable HTTP at /mcp (api/mcp.py)
    tracing = configure_tracing()  # only with OTEL_EXPORTER_OTLP_ENDPOINT set

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            async with mcp.running():  # the MCP SDK's session manager lives as long as the app
                yield
        finally:
            await service.close_gateway()
            await asyncio.to_thread(service.stop)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # exports what is still batched

    app = FastAPI(
        title="RAG question answering",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = service
    problems.install(app, on_problem=lambda exc: service.metrics.errors.labels(exc.code).inc())
    app.include_router(documents.router)
    app.include_router(pages.router)
    app.include_router(jobs.router)
    app.include_router(query.router)
    app.include_router(conversations.router)
    app.include_router(chat.router)
    app.include_router(ops.router)
    app.router.routes.append(mcp.route)
    app.mount("/static", StaticFiles(directory=ops.STATIC_DIR), name="static")
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # off unless configured: a browser app on another origin that holds an API key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        LocalGuard, allowed_hosts=parse_allowed_hosts(settings.allowed_hosts), keyless=settings.auth_disabled
    )  # inside RequestContext: a refusal still gets its request id, metrics and log line
    app.add_middleware(
        RequestContext,
        metrics=service.metrics,
        max_upload_bytes=settings.max_upload_bytes,
        body_idle_timeout_s=settings.body_idle_timeout_s,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if tracing is not None:  # a span per request, the root of the stages' spans
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracing,
            excluded_urls="healthz,readyz,metrics",
            exclude_spans=["receive", "send"],
        )
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the shared Problem body every error response refers to."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = problems.Problem.model_json_schema()
    app.openapi_schema = schema
    return schema


__all__ = ["create_app"]
