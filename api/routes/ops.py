"""Operations: liveness, readiness, metrics, error-code descriptions, admin views, the web page."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response

from api.auth import require_admin
from api.deps import AdminDep, OptionalPrincipalDep, ServiceDep
from api.problems import PROBLEM_MEDIA_TYPE, describe_code, error_responses, problem_body
from api.routes.jobs import job_out
from api.schemas import Health, JobOut, Readiness
from ingest.jobs import STATES
from rag.errors import InvalidRequest, NotFound, NotReady, Unauthorized

router = APIRouter()
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


@router.get("/healthz", response_model=Health, tags=["ops"], summary="The process is up")
async def healthz(service: ServiceDep) -> Health:
    return Health(status="ok", uptime_s=round(time.time() - service.backend.started_at, 3))


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=error_responses(503),
    tags=["ops"],
    summary="Index, models, providers (with breaker state), re-ranker, job workers",
)
async def readyz(service: ServiceDep, caller: OptionalPrincipalDep) -> Any:
    """Ready or not for anyone (probes); which part is not, for the admin key only."""
    ready, found = await asyncio.to_thread(service.backend.readiness)
    checks = jsonable_encoder(found) if caller is not None and caller.admin else None
    if ready:
        return Readiness(ready=True, checks=checks)
    body = problem_body(NotReady("Some parts of the service are not ready", retry_after=5))
    if checks is not None:
        body["checks"] = checks
    return JSONResponse(body, status_code=503, media_type=PROBLEM_MEDIA_TYPE, headers={"Retry-After": "5"})


@router.get(
    "/metrics",
    tags=["ops"],
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **error_responses(401, 403)},
    response_class=Response,
)
async def metrics(service: ServiceDep, caller: OptionalPrincipalDep) -> Response:
    """For the admin key, or anyone with ``RAG_METRICS_OPEN`` (a scraper on a private network)."""
    if not service.settings.metrics_open:
        if caller is None:
            raise Unauthorized("/metrics needs the admin key (or RAG_METRICS_OPEN=true)")
        require_admin(caller)
    body, content_type = service.metrics.render()
    return Response(body, media_type=content_type)


@router.get(
    "/problems/{code}",
    tags=["ops"],
    summary="What an error code means (the target of a problem's `type`)",
    responses=error_responses(404),
)
async def problem_type(code: str) -> dict[str, Any]:
    found = describe_code(code)
    if found is None:
        raise NotFound(f"no error code {code[:64]!r}")
    return found


@router.get(
    "/v1/admin/stats",
    tags=["admin"],
    responses=error_responses(401, 403, 429),
    summary="Index statistics of every collection (chunk counts on both index sides), and the job queue",
)
async def admin_stats(service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    stats = await asyncio.to_thread(service.backend.index_stats)
    return {"index": stats, "jobs": service.backend.job_counts()}


@router.get(
    "/v1/admin/jobs",
    tags=["admin"],
    response_model=list[JobOut],
    responses=error_responses(401, 403, 422, 429),
    summary="Recent jobs of every tenant",
)
async def admin_jobs(
    service: ServiceDep,
    principal: AdminDep,
    state: Annotated[str | None, Query(description="queued, running, succeeded or failed")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobOut]:
    if state is not None and state not in STATES:
        raise InvalidRequest(f"state: one of {', '.join(STATES)}")
    return [job_out(principal, j) for j in service.backend.recent_jobs(state=state, limit=limit)]


PAGE_HEADERS = {
    # no inline script or style, no framing (clickjacking), nothing sent to other sites
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@router.get("/", include_in_schema=False)
async def index_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)
