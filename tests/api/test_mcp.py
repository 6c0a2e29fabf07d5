"""The MCP server, through the official SDK's client: streamable HTTP at /mcp, and ``rag mcp`` over stdio."""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from api.mcp import page_text
from ingest.chunking import Chunker
from rag.types import Chunk, Page
from tests.api.conftest import ADMIN_KEY, ALPHA_KEY, BETA_KEY, RAG, LiveServer, assert_problem

slow = pytest.mark.slow

TOOLS = {"search", "ask", "list_documents", "read_page"}
FRESNEL_QUESTION = "Who presented a new kind of lens for lighthouses in 1822?"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}

T = TypeVar("T")


@asynccontextmanager
async def http_session(live: LiveServer, key: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0)) as http,
        streamable_http_client(f"{live.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def with_session(live: LiveServer, key: str, work: Callable[[ClientSession], Awaitable[T]]) -> T:
    """Run ``work`` in a fresh MCP session over HTTP, as ``key``'s tenant."""

    async def run() -> T:
        async with http_session(live, key) as session:
            return await work(session)

    return anyio.run(run)


def payload(result: CallToolResult) -> dict[str, Any]:
    """The structured content, checked to be the same object as the JSON text block."""
    assert result.structured_content is not None, result
    assert not result.is_error, result
    text = [c for c in result.content if isinstance(c, TextContent)]
    assert text and json.loads(text[0].text) == result.structured_content, result.content
    return dict(result.structured_content)


def page(result: CallToolResult) -> dict[str, Any]:
    """``read_page``'s structured content; its text block is the page's text itself."""
    assert not result.is_error and result.structured_content is not None, result
    text = [c for c in result.content if isinstance(c, TextContent)]
    assert [t.text for t in text] == [result.structured_content["text"]]
    return dict(result.structured_content)


def error(result: CallToolResult) -> dict[str, Any]:
    """A tool error: ``code: detail`` text, and the problem object as structured content."""
    assert result.is_error and result.structured_content is not None, result
    text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
    problem = dict(result.structured_content)
    assert text == f"{problem['code']}: {problem['detail']}"
    return problem


@slow
def test_lists_the_four_tools(live: LiveServer) -> None:
    async def work(session: ClientSession) -> set[str]:
        return {tool.name for tool in (await session.list_tools()).tools}

    assert with_session(live, ALPHA_KEY, work) == TOOLS


@slow
def test_search_returns_what_v1_search_returns(live: LiveServer, samples_indexed: dict[str, Any]) -> None:
    async def work(session: ClientSession) -> CallToolResult:
        return await session.call_tool("search", {"query": FRESNEL_QUESTION, "top_k": 3})

    found = payload(with_session(live, ALPHA_KEY, work))
    with live.client(ALPHA_KEY) as client:
        expected = client.post("/v1/search", json={"query": FRESNEL_QUESTION, "top_k": 3}).json()
    assert [h["chunk_id"] for h in found["results"]] == [h["chunk_id"] for h in expected["results"]]
    assert found["results"][0]["document_name"] == "lighthouses.pdf"
    assert "Fresnel" in found["results"][0]["text"]


@slow
def test_ask_answers_with_citations(live: LiveServer, samples_indexed: dict[str, Any]) -> None:
    async def work(session: ClientSession) -> CallToolResult:
        return await session.call_tool("ask", {"question": FRESNEL_QUESTION})

    answer = payload(with_session(live, ALPHA_KEY, work))
    assert not answer["abstained"] and "Fresnel" in answer["answer"]
    pdf_id = samples_indexed["lighthouses.pdf"]["id"]
    cited = [c for c in answer["citations"] if c["document_id"] == pdf_id]
    assert cited and 2 in cited[0]["pages"] and "Fresnel" in cited[0]["snippet"], answer["citations"]
    assert answer["id"]  # stored, like every surface's answers


@slow
def test_lists_documents_and_reads_their_pages(live: LiveServer, samples_indexed: dict[str, Any]) -> None:
    pdf_id = samples_indexed["lighthouses.pdf"]["id"]
    md_id = samples_indexed["normans.md"]["id"]

    async def work(session: ClientSession) -> list[CallToolResult]:
        return [
            await session.call_tool("list_documents", {"collection": "default"}),
            await session.call_tool("read_page", {"document_id": pdf_id, "page": 1}),
            await session.call_tool("read_page", {"document_id": pdf_id, "page": 2}),
            await session.call_tool("read_page", {"document_id": md_id, "page": 1}),
            await session.call_tool("read_page", {"document_id": pdf_id, "page": 3}),
            await session.call_tool("read_page", {"document_id": pdf_id, "page": 0}),
        ]

    listed, page1, page2, markdown, page3, page0 = with_session(live, ALPHA_KEY, work)
    documents = {d["name"]: d for d in payload(listed)["documents"]}
    assert set(samples_indexed) <= set(documents)
    assert documents["lighthouses.pdf"]["id"] == pdf_id
    assert documents["lighthouses.pdf"]["state"] == "indexed" and documents["lighthouses.pdf"]["pages"] == 2
    assert documents["lighthouses.pdf"]["chunks"] > 0

    first, second = page(page1), page(page2)
    assert first["document_id"] == pdf_id and first["page"] == 1 and first["pages"] == 2
    assert first["text"].startswith("Lighthouses: a short field guide")
    assert "light characteristic" in " ".join(first["text"].split())
    assert "Fresnel" not in first["text"]  # that is page 2's
    assert second["text"].startswith("The Fresnel lens") and "Augustin-Jean Fresnel" in second["text"]
    assert "field guide" not in second["text"]
    assert "Normandy" in page(markdown)["text"]
    for missing in (page3, page0):
        assert error(missing)["code"] == "not_found" and error(missing)["status"] == 404


@slow
def test_another_tenant_sees_none_of_the_documents(live: LiveServer, samples_indexed: dict[str, Any]) -> None:
    alpha_ids = {d["id"] for d in samples_indexed.values()}
    pdf_id = samples_indexed["lighthouses.pdf"]["id"]

    async def work(session: ClientSession) -> list[CallToolResult]:
        return [
            await session.call_tool("list_documents", {}),
            await session.call_tool("read_page", {"document_id": pdf_id, "page": 1}),
            await session.call_tool("search", {"query": FRESNEL_QUESTION}),
        ]

    listed, read, search = with_session(live, BETA_KEY, work)
    assert not alpha_ids & {d["id"] for d in payload(listed)["documents"]}
    problem = error(read)
    assert problem["code"] == "not_found" and "Lighthouses" not in json.dumps(problem)
    assert not alpha_ids & {h["document_id"] for h in payload(search)["results"]}


@slow
def test_mcp_needs_a_tenant_key(live: LiveServer) -> None:
    url = f"{live.url}/mcp"
    body = assert_problem(httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS), 401, "unauthorized")
    assert body["detail"]
    bad = {**MCP_HEADERS, "Authorization": "Bearer not-a-key-0123456789abcdef"}
    resp = httpx.post(url, json=INITIALIZE, headers=bad)
    assert_problem(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"].startswith("Bearer")
    admin = {**MCP_HEADERS, "Authorization": f"Bearer {ADMIN_KEY}"}
    assert_problem(httpx.post(url, json=INITIALIZE, headers=admin), 403, "forbidden")
    good = {**MCP_HEADERS, "Authorization": f"Bearer {ALPHA_KEY}"}
    resp = httpx.post(url, json=INITIALIZE, headers=good)  # exactly /mcp: no redirect
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["serverInfo"]["name"] == "rag"
    # stateless: no stream to hold open on GET, no session to end on DELETE
    for method in ("GET", "DELETE"):
        assert_problem(httpx.request(method, url, headers=good), 405, "method_not_allowed")


def _stdio_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "RAG_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "ANONYMIZED_TELEMETRY": "False",
        "RAG_RERANKER": "none",
        **extra,
    }


@slow
def test_rag_mcp_serves_the_tools_over_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=str(RAG),
        args=["mcp"],
        env=_stdio_env(tmp_path / "var", RAG_AUTH_DISABLED="true"),
        cwd=tmp_path,  # no stray .env from the repository
    )

    async def run() -> tuple[set[str], CallToolResult]:
        with (tmp_path / "stderr.log").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                tools = {tool.name for tool in (await session.list_tools()).tools}
                return tools, await session.call_tool("list_documents", {})

    tools, listed = anyio.run(run)
    assert tools == TOOLS, (tmp_path / "stderr.log").read_text()
    assert payload(listed) == {"documents": [], "total": 0}


@slow
def test_rag_mcp_without_a_key_says_how_to_pass_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(_stdio_env(tmp_path / "var", RAG_API_KEYS=f"{ALPHA_KEY}:alpha"))
    done = subprocess.run(
        [str(RAG), "mcp"], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=120
    )
    assert done.returncode == 1
    assert b"--api-key" in done.stderr and b"RAG_MCP_API_KEY" in done.stderr
    assert b"Traceback" not in done.stderr and done.stdout == b""


# --- pages rebuilt from chunks (no server) ---------------------------------------------------


WORDS = ("the", "keeper", "lit", "a", "lamp", "every", "night", "and", "ships", "passed", "safely", "along")


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))).capitalize() + "."


def _pages(rng: random.Random, paragraphs: int) -> list[Page]:
    """Pages of prose; about half end in mid-sentence and the next page goes on in lower case."""
    pages: list[Page] = []
    cut = False
    for number in range(1, rng.randint(2, 7)):
        blocks = [" ".join(rng.choice(WORDS) for _ in range(5)) + "."] if cut else []
        blocks += [" ".join(_sentence(rng) for _ in range(rng.randint(1, 5))) for _ in range(paragraphs)]
        text = "\n\n".join(blocks)
        cut = rng.random() < 0.5
        pages.append(Page(page_no=number, text=text[:-1] + " and the" if cut else text, source="text-layer"))
    return pages


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(40, 0), (64, 16), (128, 32), (256, 40)])
def test_pages_without_blank_lines_are_rebuilt_exactly(chunk_tokens: int, overlap_tokens: int) -> None:
    rng = random.Random(chunk_tokens)
    chunker = Chunker(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    across = 0
    for _ in range(25):
        pages = _pages(rng, paragraphs=1)
        pages = [Page(p.page_no, p.text.replace("\n\n", " "), p.source) for p in pages]
        chunks = list(chunker.chunk("doc", pages))
        across += sum(c.page_start != c.page_end for c in chunks)
        for page in pages:
            assert page_text(chunks, page.page_no) == page.text
        assert page_text(chunks, len(pages) + 1) == ""
    assert across > 5  # chunks that run across a page break: the case to get right


def test_pages_with_paragraphs_partition_the_document() -> None:
    """Blank lines within a page can be mistaken for the page break only where a chunk runs
    across pages: no text is ever lost or repeated, and most pages come back exactly."""
    rng = random.Random(3)
    exact = total = 0
    for chunk_tokens, overlap_tokens in [(64, 16), (128, 32), (256, 40)]:
        chunker = Chunker(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
        for _ in range(20):
            pages = _pages(rng, paragraphs=3)
            chunks = list(chunker.chunk("doc", pages))
            rebuilt = [page_text(chunks, p.page_no) for p in pages]
            assert " ".join(" ".join(rebuilt).split()) == " ".join(" ".join(p.text for p in pages).split())
            exact += sum(r == p.text for r, p in zip(rebuilt, pages, strict=True))
            total += len(pages)
    assert exact >= 0.85 * total, (exact, total)


def test_a_page_is_read_from_its_chunks_overlaps_once_and_without_a_repeated_table_header() -> None:
    doc = "Alpha one. Alpha two.\n\nBeta one. Beta two. Beta three.\n\nGamma."
    beta = doc.index("Beta")

    def chunk(n: int, start: int, end: int, pages: tuple[int, int], prefix: str = "") -> Chunk:
        return Chunk(f"d:{n:06d}", "d", n, prefix + doc[start:end], *pages, start, end, 5)

    chunks = [
        chunk(0, 0, doc.index(" Beta two"), (1, 2)),
        chunk(1, doc.index("Beta one"), doc.index(" Beta three"), (2, 2)),  # overlaps the first
        chunk(2, doc.index("Beta three"), len(doc), (2, 3), prefix="Header | row\n"),
    ]
    assert page_text(chunks, 1) == "Alpha one. Alpha two."
    assert page_text(chunks, 2) == doc[beta : doc.index("\n\nGamma")]
    assert page_text(chunks, 3) == "Gamma."
    assert page_text(list(reversed(chunks)), 2) == page_text(chunks, 2)
    assert page_text([], 1) == ""
