"""Ingestion jobs: where an upload is, how far it got, and why it failed."""

from __future__ import annotations

import time

from fastapi import APIRouter

from api.auth import Principal
from api.deps import ServiceDep, TenantDep
from api.problems import error_responses
from api.schemas import JobError, JobOut, JobProgress
from ingest.jobs import Job
from rag.errors import Conflict, NotFound

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def job_out(principal: Principal, job: Job) -> JobOut:
    now = time.time()
    started = job.started_at
    finished = job.finished_at
    timings = {
        "queued": round((started or now) - job.created_at, 3),
        "running": round((finished or now) - started, 3) if started else 0.0,
        "total": round((finished or now) - job.created_at, 3),
    }
    return JobOut(
        id=job.id,
        document_id=job.document_id,
        name=job.name,
        collection=principal.public(job.collection),
        state=job.state,  # type: ignore[arg-type]
        attempts=job.attempts,
        progress=JobProgress(**job.progress),
        result=job.result,
        error=JobError(code=job.error_code, message=job.error_message or "")
        if job.state == "failed" and job.error_code
        else None,
        timings=timings,
        created_at=job.created_at,
        started_at=started,
        finished_at=finished,
    )


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses=error_responses(401, 403, 404, 429),
    summary="State, progress, timings and error of an ingestion job",
)
async def get_job(job_id: str, service: ServiceDep, principal: TenantDep) -> JobOut:
    job = service.backend.job(job_id)
    if job is None or not principal.owns(job.collection):
        raise NotFound(f"job {job_id[:64]} not found")
    return job_out(principal, job)


@router.delete(
    "/{job_id}",
    status_code=202,
    response_model=JobOut,
    responses=error_responses(401, 403, 404, 409, 429),
    summary="Cancel a queued or running ingestion job (it ends failed, code `cancelled`)",
)
async def cancel_job(job_id: str, service: ServiceDep, principal: TenantDep) -> JobOut:
    job = service.backend.job(job_id)
    if job is None or not principal.owns(job.collection):
        raise NotFound(f"job {job_id[:64]} not found")
    if not service.backend.cancel_job(job_id):
        raise Conflict(f"job {job_id[:64]} has already ended ({job.state})")
    found = service.backend.job(job_id)
    return job_out(principal, found or job)
