"""The service as an MCP server: search, ask, list documents and read pages from an MCP client.

Two transports serve the same tools. Streamable HTTP at ``/mcp`` in the app (POST only,
stateless, JSON responses: any number of clients, nothing kept between requests) takes the API's
bearer keys:
:class:`McpEndpoint` authenticates each HTTP request exactly as the routes do (``api.deps``:
the key ring, failed-key slow-down, rate limit; the admin key has no tenant), so a missing or
bad key is a 401 problem+json before the MCP SDK sees the request. The principal rides in the
request's ASGI state, where every tool reads it back from the SDK's request context. Over stdio
(``rag mcp``) there is no request: the principal is fixed when the server is built.

Tools act in the caller's tenant only: another tenant's document answers "not found", like
one that does not exist. Failures are tool errors (``isError``) whose text starts with the
stable error code and whose structured content is the same problem object the HTTP API sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.answers import answer_question
from api.auth import Principal, require_tenant
from api.deps import bearer, get_principal
from api.limits import check_question, check_top_k
from api.problems import problem_body
from api.routes.documents import find_document, list_documents
from api.service import Service
from rag.errors import DeadlineExceeded, NotFound, NotReady, RagError, Unauthorized
from rag.logs import redact
from rag.types import PAGE_SEPARATOR, Chunk

log = logging.getLogger(__name__)

PATH = "/mcp"
SURFACE = "mcp"
"""How answers asked here are recorded (``answer_question``'s ``surface``)."""
PRINCIPAL_STATE = "principal"
"""The ASGI state key the principal is kept under: the one ``api.deps`` uses, so the access log names the key."""
MAX_DOCUMENTS = 1000
_BLANK_RUNS = re.compile(r"\n{3,}")
_SEPARATORS = re.compile(f"(?={re.escape(PAGE_SEPARATOR)})")
_ENDS_SENTENCE = re.compile(r"[.!?。．！？…:;][\"'”’)\]]*\s*\Z")
"""Text that ends a sentence (or a colon or semicolon before a list): blank lines after it are
more likely a paragraph's end than a page break cutting a sentence."""

_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_INSTRUCTIONS = (
    "Answers questions from the user's own documents with citations. Use `ask` for an answer "
    "(each citation names a document, its pages and a snippet), `search` for the matching passages "
    "alone, `list_documents` to see what is indexed, and `read_page` to read a cited page in full."
)

Collection = Annotated[
    str | None, Field(description="one of your collections; default: the 'default' collection")
]


# --- who is calling -----------------------------------------------------------------


def _caller(ctx: Context[Any, Any], fixed: Principal | None) -> Principal:
    """The principal of this tool call: from the HTTP request's state, or the stdio server's own."""
    request = ctx.request_context.request
    if request is None:  # stdio: no request; the principal was fixed when the server was built
        if fixed is None:
            raise Unauthorized("This MCP server was started without a principal")
        return fixed
    scope = getattr(request, "scope", None)
    state = scope.get("state") if isinstance(scope, dict) else None
    principal = state.get(PRINCIPAL_STATE) if isinstance(state, dict) else None
    if not isinstance(principal, Principal):  # never trust a fixed principal for a network request
        raise Unauthorized()
    return principal


def stdio_principal(service: Service, api_key: str | None) -> Principal:
    """Whom ``rag mcp`` acts for: ``api_key``'s tenant, or the local principal when auth is off."""
    if not api_key and not service.keyring.disabled:
        raise Unauthorized(
            "rag mcp acts for one tenant: pass --api-key KEY (or set RAG_MCP_API_KEY), "
            "or set RAG_AUTH_DISABLED=true for local use"
        )
    return require_tenant(service.keyring.authenticate(api_key or None))


# --- results ------------------------------------------------------------------------


def _json_result(payload: dict[str, Any]) -> CallToolResult:
    """Both styles of client: the object as structured content, and as JSON text."""
    text = json.dumps(payload, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=payload)


def _error_result(service: Service, exc: RagError) -> CallToolResult:
    """A failure the model can read (``code: detail``) and a client can parse (the problem object)."""
    service.metrics.errors.labels(exc.code).inc()
    if exc.status >= 500:
        log.warning("MCP tool failed: %s: %s", exc.code, redact(exc.message))
    body = problem_body(exc)
    text = f"{exc.code}: {body['detail']}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=body, is_error=True
    )


async def _guarded(service: Service, work: Awaitable[CallToolResult]) -> CallToolResult:
    """The tool's result, or its ``RagError`` as a tool error (a slow query as ``deadline_exceeded``)."""
    try:
        async with asyncio.timeout(service.settings.query_deadline_s):
            return await work
    except TimeoutError:
        return _error_result(
            service, DeadlineExceeded(f"the tool took longer than {service.settings.query_deadline_s:g} s")
        )
    except RagError as exc:
        return _error_result(service, exc)


# --- pages --------------------------------------------------------------------------


def _span_text(chunk: Chunk) -> str:
    """The chunk's own span of the document text (a split table's repeated header dropped)."""
    width = chunk.char_end - chunk.char_start
    return chunk.text[len(chunk.text) - width :] if 0 <= width <= len(chunk.text) else chunk.text


def _mid_sentence(text: str, i: int) -> bool:
    """Whether the blank lines at ``i`` cut a sentence: no full stop before, lower case after."""
    after = text[i : i + 12].lstrip()
    return bool(after[:1].islower()) and not _ENDS_SENTENCE.search(text, max(0, i - 8), i)


def page_text(chunks: Iterable[Chunk], page: int) -> str:
    """One page's text, rebuilt from the chunks that touch it (and their neighbours).

    No page text is stored, only chunks: overlapping spans of the document text (the pages
    joined by ``PAGE_SEPARATOR``) with exact offsets and the pages of their first and last
    character. The spans are laid back at their offsets (overlaps counted once), so the pages
    always partition the text: nothing is lost or repeated. Each page break lies between the
    last character known to be on the earlier page and the first known to be on the later one,
    at a page separator (blank lines). Where a chunk runs across pages and the page also has
    blank lines of its own in that stretch, the break is a guess (see ``boundary``): a
    paragraph there may land on the neighbouring page.
    """
    chunks = list(chunks)
    spans = sorted(((c.char_start, _span_text(c)) for c in chunks), key=lambda s: s[0])
    if not spans:
        return ""
    marks: set[tuple[int, int]] = set()  # (offset, page) of every chunk's first and last character
    for c in chunks:
        marks.add((c.char_start, c.page_start))
        if c.char_end > c.char_start:
            marks.add((c.char_end - 1, c.page_end))
    origin = spans[0][0]
    parts: list[str] = []
    end = origin
    for start, text in spans:
        if start > end:  # whitespace between two chunks that do not overlap
            gap = start - end
            parts.append(" " if gap == 1 else "\n" * gap)
            end = start
        if start + len(text) > end:
            parts.append(text[end - start :])
            end = start + len(text)
    text = "".join(parts)

    def boundary(q: int, not_before: int) -> tuple[int, int]:
        """Where page ``q`` ends and page ``q + 1`` begins, as document offsets."""
        before = [pos + 1 for pos, p in marks if p <= q]
        after = [(pos, p) for pos, p in marks if p > q]
        if not before:
            return origin, origin
        if not after:
            return end, end
        lo = max(max(before), not_before) - origin
        hi, next_page = min(after)
        hi -= origin
        if hi < lo:
            return origin + lo, origin + lo
        breaks = [
            m.start()
            for m in _SEPARATORS.finditer(text, lo, hi)
            if m.start() == lo or text[m.start() - 1] != "\n"  # the start of a run of blank lines
        ]
        if not breaks:
            return origin + hi, origin + hi
        # ``next_page - q`` page breaks lie in here (more than one past pages that no chunk starts
        # or ends on). Blank lines within a page follow a finished sentence, and a page break in
        # mid-sentence goes on in lower case: when such breaks account for every page break here,
        # the first is this one; otherwise this one is the first blank lines of all.
        cuts = [i for i in breaks if _mid_sentence(text, i)]
        found = cuts[0] if len(cuts) >= next_page - q else breaks[0]
        return origin + found, origin + found + len(PAGE_SEPARATOR)

    start = origin  # page by page from the first one known: a page no chunk starts or ends on
    for earlier in range(min(p for _, p in marks), page):  # still takes one page break
        start = boundary(earlier, start)[1]
    stop = boundary(page, start)[0]
    return _BLANK_RUNS.sub("\n\n", text[start - origin : max(start, stop) - origin]).strip()


def read_document_page(service: Service, principal: Principal, document_id: str, page: int) -> dict[str, Any]:
    """The text of one page of the caller's indexed document; anything else is ``NotFound``."""
    found = find_document(service, principal, document_id)  # another tenant's: not found, alike
    doc = service.backend.document(document_id)
    if found.state != "indexed" or doc is None:
        raise NotFound(f"document {document_id[:64]} is {found.state}, not indexed: it has no pages to read")
    if page < 1 or (doc.pages and page > doc.pages):
        raise NotFound(f"page {page} of document {doc.id} not found: it has {doc.pages} page(s)")
    record = service.backend.page(doc.id, page)  # kept since page images; rebuilt for older documents
    text = record.text if record is not None else page_text(service.backend.page_chunks(doc, page), page)
    return {
        "document_id": doc.id,
        "document_name": doc.name,
        "collection": principal.public(doc.collection),
        "page": page,
        "pages": doc.pages,
        "text": text,
    }


# --- the tools ----------------------------------------------------------------------


def build_server(
    service: Service,
    principal: Principal | None = None,
    lifespan: Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]] | None = None,
) -> MCPServer[Any]:
    """The MCP server with the service's tools. ``principal``: whom a stdio server acts for (an
    HTTP request always brings its own); ``lifespan``: what runs around a stdio session."""
    settings = service.settings
    root = logging.getLogger()
    placeholder = None
    if not root.handlers:  # the SDK would otherwise configure the process's logging for it
        placeholder = logging.NullHandler()
        root.addHandler(placeholder)
    try:
        server: MCPServer[Any] = MCPServer(
            name="rag", title="RAG question answering", instructions=_INSTRUCTIONS, lifespan=lifespan
        )
    finally:
        if placeholder is not None:
            root.removeHandler(placeholder)

    async def search(
        query: Annotated[str, Field(description="what to look for, in words")],
        ctx: Context[Any, Any],
        collection: Collection = None,
        top_k: Annotated[int | None, Field(description="how many passages; bounded by the server")] = None,
    ) -> CallToolResult:
        async def run() -> CallToolResult:
            caller = _caller(ctx, principal)
            question = check_question(query, settings)
            k = check_top_k(top_k, settings)
            internal = caller.internal(collection or settings.default_collection)
            pipeline = await service.backend.query_pipeline()
            result = await asyncio.to_thread(pipeline.search, question, internal, None, k)
            return _json_result(result.model_dump(mode="json"))

        return await _guarded(service, run())

    async def ask(
        question: Annotated[str, Field(description="the question, in words")],
        ctx: Context[Any, Any],
        collection: Collection = None,
        conversation_id: Annotated[
            str | None,
            Field(description="a conversation of yours to ask in: a follow-up is read in its context"),
        ] = None,
    ) -> CallToolResult:
        async def run() -> CallToolResult:
            caller = _caller(ctx, principal)
            answer = await answer_question(
                service,
                caller,
                question,
                collection=collection,
                conversation_id=conversation_id,
                surface=SURFACE,
            )
            return _json_result(answer.model_dump(mode="json"))

        return await _guarded(service, run())

    async def list_documents_tool(
        ctx: Context[Any, Any],
        collection: Annotated[
            str | None, Field(description="only this collection; default: all of yours")
        ] = None,
    ) -> CallToolResult:
        async def run() -> CallToolResult:
            caller = _caller(ctx, principal)
            listed = await list_documents(
                service, caller, collection=collection, limit=MAX_DOCUMENTS, offset=0
            )
            return _json_result(listed.model_dump(mode="json"))

        return await _guarded(service, run())

    async def read_page(
        document_id: Annotated[str, Field(description="a document's id, from list_documents or a citation")],
        page: Annotated[int, Field(description="the page number, from 1")],
        ctx: Context[Any, Any],
    ) -> CallToolResult:
        async def run() -> CallToolResult:
            caller = _caller(ctx, principal)
            found = await asyncio.to_thread(read_document_page, service, caller, document_id, page)
            return CallToolResult(
                content=[TextContent(type="text", text=found["text"])], structured_content=found
            )

        return await _guarded(service, run())

    server.add_tool(
        search,
        name="search",
        title="Search your documents",
        description="Retrieval only: the passages of your documents that best match the query, best first, "
        "each with its document, pages, text and every ranking stage's scores. Use `ask` for an answer.",
        annotations=_READ_ONLY,
    )
    server.add_tool(
        ask,
        name="ask",
        title="Ask your documents",
        description="Answer a question from your documents. The answer cites its sources: each citation has "
        "the document, its pages and the quoted snippet; `abstained` is true when the documents do not say.",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    server.add_tool(
        list_documents_tool,
        name="list_documents",
        title="List your documents",
        description="Your documents: id, name, collection, state (indexed, queued, indexing, failed), pages "
        "and chunks. Use an id with `read_page`.",
        annotations=_READ_ONLY,
    )
    server.add_tool(
        read_page,
        name="read_page",
        title="Read a page",
        description="The text of one page of one of your indexed documents (pages count from 1).",
        annotations=_READ_ONLY,
    )
    return server


# --- streamable HTTP ----------------------------------------------------------------


class McpEndpoint:
    """``/mcp``: authenticates like the API, then hands the request to the MCP SDK.

    Stateless and JSON-only, so no session outlives a request and any replica can answer.
    Host and cross-site checks are ``api.local_guard``'s (``RAG_ALLOWED_HOSTS``), as for every
    route, so the SDK's own DNS-rebinding check is off."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.server = build_server(service)
        self._manager: StreamableHTTPSessionManager | None = None
        self.route = Route(PATH, endpoint=self, methods=["POST"], name="mcp", include_in_schema=False)
        """The route to add to the app: exactly ``/mcp``, POST only. Stateless, the server has no
        stream to offer on GET (an empty one would hold a connection for ever) and no session to
        end on DELETE: both are 405, as the transport's specification allows."""
        # one line per request at INFO ("Terminating session: None"): the access log has it already
        logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the SDK's session manager for the app's lifetime (a fresh one each time: it runs once)."""
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # metrics and the access log name the route, as for the API's own
        request = Request(scope, receive)
        # The API's own dependencies, called directly: the same keys, slow-down and rate limit.
        principal = require_tenant(get_principal(request, self.service, await bearer(request)))
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        manager = self._manager
        if manager is None:
            raise NotReady("The MCP endpoint is not running", retry_after=5)
        await manager.handle_request(scope, receive, send)


# --- stdio --------------------------------------------------------------------------


async def serve_stdio(service: Service, principal: Principal) -> None:
    """Serve the tools over stdin/stdout for ``principal`` until the client closes stdin.

    The service starts inside the session, once the SDK has moved stray writes to stdout
    over to stderr, so nothing but protocol messages reaches the client."""

    @asynccontextmanager
    async def running(_: MCPServer[Any]) -> AsyncIterator[None]:
        await asyncio.to_thread(service.start)
        try:
            yield
        finally:
            await service.close_gateway()
            await asyncio.to_thread(service.stop)

    server = build_server(service, principal, lifespan=running)
    try:
        await server.run_stdio_async()
    except BaseExceptionGroup as group:  # the SDK's task groups wrap what the lifespan raised
        matched, _ = group.split(RagError)
        if matched is None:
            raise
        first: BaseException = matched
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


__all__ = ["PATH", "McpEndpoint", "build_server", "page_text", "serve_stdio", "stdio_principal"]
