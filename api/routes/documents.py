"""Documents: upload (queued as jobs), list, show, delete; always within the caller's tenant.

Another tenant's document answers 404, exactly like one that does not exist, so ids
reveal nothing across tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Principal
from api.deps import ServiceDep, TenantDep
from api.limits import MAX_FILES_PER_UPLOAD
from api.problems import error_responses
from api.schemas import DocumentList, DocumentOut, JobError, UploadAccepted, UploadItem, parse_metadata
from api.service import Service
from api.uploads import ReceivedForm, receive_upload
from ingest.intake import Admission
from ingest.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, Job
from rag.errors import Conflict, InvalidRequest, NotFound, RagError
from rag.types import Document

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                        "maxItems": MAX_FILES_PER_UPLOAD,
                        "description": "documents: PDF, PNG, JPEG, TIFF, DOCX, HTML, Markdown, text",
                    },
                    "collection": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$"},
                    "metadata": {"type": "string", "description": "a JSON object of scalar values"},
                },
            },
            "encoding": {"files": {"contentType": "application/octet-stream"}},
        }
    },
}


def _document_out(principal: Principal, doc: Document) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        name=doc.name,
        collection=principal.public(doc.collection),
        kind=doc.kind,
        size_bytes=doc.size_bytes,
        pages=doc.pages,
        ocr_pages=doc.ocr_pages,
        chunks=doc.chunks,
        state="indexed",
        created_at=doc.created_at,
        metadata=doc.metadata,
    )


def _pending_out(principal: Principal, job: Job) -> DocumentOut:
    state = {QUEUED: "queued", RUNNING: "indexing", FAILED: "failed"}.get(job.state, "failed")
    return DocumentOut(
        id=job.document_id,
        name=job.name,
        collection=principal.public(job.collection),
        state=state,  # type: ignore[arg-type]
        created_at=job.created_at,
        metadata=job.metadata,
        job_id=job.id,
        error=JobError(code=job.error_code, message=job.error_message or "")
        if job.state == FAILED and job.error_code
        else None,
    )


def find_document(service: Service, principal: Principal, doc_id: str) -> DocumentOut:
    """The tenant's view of a document id: indexed, on its way, or failed; 404 otherwise."""
    doc = service.backend.document(doc_id)
    if doc is not None and principal.owns(doc.collection):
        return _document_out(principal, doc)
    job = service.backend.latest_job(doc_id)
    if job is not None and job.state != SUCCEEDED and principal.owns(job.collection):
        return _pending_out(principal, job)
    raise NotFound(f"document {doc_id[:64]} not found")


@router.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses={
        200: {"description": "every file was already indexed or queued: no new job", "model": UploadAccepted},
        **error_responses(401, 403, 413, 415, 422, 429),
    },
    summary="Upload documents; each file becomes an ingestion job",
)
async def upload(request: Request, service: ServiceDep, principal: TenantDep) -> JSONResponse:
    settings = service.settings
    service.backend.check_capacity(principal.tenant, 1)
    form = await receive_upload(
        request,
        settings.uploads_dir,
        max_file_bytes=settings.max_upload_bytes,
        max_files=MAX_FILES_PER_UPLOAD,
    )
    try:
        items, created = await _accept(service, principal, form)
    except BaseException:
        form.discard()
        service.metrics.uploads.labels("refused").inc()
        raise
    for item in items:
        service.metrics.uploads.labels(item.status).inc()
    body = UploadAccepted(items=items).model_dump()
    return JSONResponse(body, status_code=202 if created else 200)


async def _accept(service: Service, principal: Principal, form: ReceivedForm) -> tuple[list[UploadItem], int]:
    """Admit every file (intake: type by magic bytes), then queue them in one transaction;
    returns the items and how many jobs are new."""
    if not form.files:
        raise InvalidRequest("files: send at least one file")
    public = form.fields.get("collection") or service.settings.default_collection
    collection = principal.internal(public)
    metadata = parse_metadata(form.fields.get("metadata"))
    admissions: list[Admission] = []
    for received in form.files:
        try:
            admissions.append(
                await asyncio.to_thread(
                    service.backend.admit,
                    received.path,
                    tenant=principal.tenant,
                    collection=collection,
                    name=received.filename,
                    metadata=metadata,
                    sha256=received.sha256,  # hashed while it streamed to disk
                )
            )
        except RagError as exc:
            exc.message = f"{received.filename}: {exc.message}"
            raise
    accepted = service.backend.enqueue(admissions)
    items = [
        UploadItem(
            filename=a.admission.name,
            document_id=a.admission.document_id,
            job_id=a.job.id if a.job is not None else None,
            status="duplicate" if a.job is None else "running" if a.job.state == RUNNING else "queued",
            collection=public,
            size_bytes=a.admission.size_bytes,
        )
        for a in accepted
    ]
    return items, sum(1 for a in accepted if a.created)


@router.get(
    "",
    response_model=DocumentList,
    responses=error_responses(401, 403, 422, 429),
    summary="List your documents: indexed ones, and those still queued or indexing",
)
async def list_documents(
    service: ServiceDep,
    principal: TenantDep,
    collection: Annotated[str | None, Query(description="only this collection")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentList:
    backend = service.backend
    if collection is not None:
        wanted = [principal.internal(collection)]
    else:
        wanted = [c for c in backend.collections() if principal.owns(c)]
    docs: list[DocumentOut] = []
    for internal in wanted:
        docs.extend(_document_out(principal, d) for d in backend.documents(internal))
        listed = {d.id for d in docs}
        docs.extend(
            _pending_out(principal, j) for j in backend.pending_jobs(internal) if j.document_id not in listed
        )
    if collection is None:  # collections that only have jobs so far
        seen = set(wanted)
        for job in backend.recent_jobs(tenant=principal.tenant, limit=1000):
            if (
                job.state in (QUEUED, RUNNING)
                and job.collection not in seen
                and principal.owns(job.collection)
            ):
                docs.append(_pending_out(principal, job))
    docs.sort(key=lambda d: (d.created_at, d.id))
    return DocumentList(documents=docs[offset : offset + limit], total=len(docs))


@router.get(
    "/{doc_id}",
    response_model=DocumentOut,
    responses=error_responses(401, 403, 404, 429),
    summary="One document: name, collection, pages, OCR pages, chunks, state, created",
)
async def get_document(doc_id: str, service: ServiceDep, principal: TenantDep) -> DocumentOut:
    return find_document(service, principal, doc_id)


CANCEL_WAIT_S = 30.0
"""How long deleting a document waits for its running ingestion to stop (it stops at the next
page or batch of chunks, a parser process at once)."""


@router.delete(
    "/{doc_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 429),
    summary="Delete a document, cancelling its ingestion first if it is queued or running",
)
async def delete_document(doc_id: str, service: ServiceDep, principal: TenantDep) -> Response:
    found = find_document(service, principal, doc_id)
    if found.state in ("queued", "indexing") and found.job_id is not None:
        ended = await asyncio.to_thread(service.backend.cancel_job_and_wait, found.job_id, CANCEL_WAIT_S)
        if ended is None:
            raise Conflict("the document's ingestion is still stopping; try again in a few seconds")
    service.backend.cancel_queued(doc_id)  # a second job queued for the same content meanwhile
    if service.backend.document(doc_id) is not None:  # indexed, or written just before the cancel
        with contextlib.suppress(NotFound):  # deleted concurrently: the outcome is the same
            await asyncio.to_thread(service.backend.delete_document, doc_id)
    return Response(status_code=204)
