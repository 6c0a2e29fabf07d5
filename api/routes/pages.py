"""A document's page as an image with the cited passage highlighted, and where that passage is.

``GET /v1/documents/{id}/pages/{n}`` renders the page (PNG); with ``chunk=`` (a chunk id, as
citations give it) or ``start=&end=`` (a citation's ``char_start``/``char_end``) the passage is
painted over it. ``.../layout`` answers the same question as JSON: the rectangles, in fractions
of the page, for a client that draws its own highlight.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.auth import Principal
from api.deps import ServiceDep, TenantDep
from api.problems import error_responses
from api.schemas import HighlightRect, PageLayoutOut
from api.service import Service
from rag.errors import InvalidRequest, NotFound, PageNotAvailable
from rag.layout import Rect
from rag.types import Document, PageRecord
from service.page_images import DEFAULT_WIDTH, MAX_WIDTH, MIN_WIDTH, render_page

router = APIRouter(prefix="/v1/documents", tags=["documents"])

PageNo = Annotated[int, Path(ge=1, le=1_000_000, description="1-based, as citations give it")]
ChunkParam = Annotated[
    str | None, Query(max_length=200, description="highlight this chunk (a citation's chunk_id)")
]
StartParam = Annotated[int | None, Query(ge=0, description="highlight from this offset of the document text")]
EndParam = Annotated[int | None, Query(ge=0, description="... to this one (a citation's char_end)")]


def _page(service: Service, principal: Principal, doc_id: str, page_no: int) -> tuple[Document, PageRecord]:
    doc = service.backend.document(doc_id)
    if doc is None or not principal.owns(doc.collection):
        raise NotFound(f"document {doc_id[:64]} not found")
    if page_no > doc.pages:
        raise NotFound(f"document {doc_id[:64]} has {doc.pages} pages; there is no page {page_no}")
    record = service.backend.page(doc_id, page_no)
    if record is None:
        raise PageNotAvailable(
            "this document was stored before pages were kept; upload it again to see its pages"
        )
    return doc, record


def _passage(
    service: Service, doc: Document, chunk: str | None, start: int | None, end: int | None
) -> tuple[int, int] | None:
    """The document-text offsets to highlight, from a chunk id or explicit offsets."""
    if chunk is not None:
        if start is not None or end is not None:
            raise InvalidRequest("give either chunk or start and end, not both")
        found = service.backend.chunk(chunk) if chunk.startswith(f"{doc.id}:") else None
        if found is None:
            raise NotFound(f"chunk {chunk[:64]} not found in this document")
        return found.char_start, found.char_end
    if start is None and end is None:
        return None
    if start is None or end is None or end <= start:
        raise InvalidRequest("start and end go together, with end after start")
    return start, end


def _highlight(record: PageRecord, passage: tuple[int, int] | None) -> tuple[list[Rect], str | None]:
    span = record.span(*passage) if passage is not None else None
    if span is None:
        return [], None
    rects = record.layout.highlight(*span) if record.layout is not None else []
    return rects, record.text[span[0] : span[1]]


@router.get(
    "/{doc_id}/pages/{page_no}",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the page, the passage painted over it"},
        **error_responses(401, 403, 404, 409, 422, 429),
    },
    summary="A page as PNG, with a cited passage (chunk, or start and end) highlighted",
)
async def page_image(
    doc_id: str,
    page_no: PageNo,
    service: ServiceDep,
    principal: TenantDep,
    width: Annotated[int, Query(ge=MIN_WIDTH, le=MAX_WIDTH, description="pixels")] = DEFAULT_WIDTH,
    chunk: ChunkParam = None,
    start: StartParam = None,
    end: EndParam = None,
) -> Response:
    doc, record = _page(service, principal, doc_id, page_no)
    rects, _ = _highlight(record, _passage(service, doc, chunk, start, end))
    original = service.backend.original(doc_id)
    if original is None:
        raise PageNotAvailable("the document's original file is not kept; upload it again to see its pages")
    png = await asyncio.to_thread(render_page, original, doc.kind, page_no, width, rects)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@router.get(
    "/{doc_id}/pages/{page_no}/layout",
    response_model=PageLayoutOut,
    responses=error_responses(401, 403, 404, 409, 422, 429),
    summary="Where a cited passage (chunk, or start and end) is on its page, as rectangles",
)
async def page_layout(
    doc_id: str,
    page_no: PageNo,
    service: ServiceDep,
    principal: TenantDep,
    chunk: ChunkParam = None,
    start: StartParam = None,
    end: EndParam = None,
) -> PageLayoutOut:
    doc, record = _page(service, principal, doc_id, page_no)
    if record.layout is None:
        raise PageNotAvailable("no word positions are known for this page (its format has no pages)")
    rects, text = _highlight(record, _passage(service, doc, chunk, start, end))
    return PageLayoutOut(
        document_id=doc.id,
        page=page_no,
        width=record.layout.width,
        height=record.layout.height,
        source=record.source,
        words=len(record.layout),
        highlight=[HighlightRect(x0=a, y0=b, x1=c, y1=d) for a, b, c, d in rects],
        text=text,
    )
