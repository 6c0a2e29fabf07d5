"""Documents read in a bounded child process: bombs fail with ``resource_limit``, nothing else changes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.isolation import ParserPool
from ingest.sniff import sniff
from rag.errors import CorruptDocument, JobCancelled, ResourceLimit
from rag.settings import Settings
from rag.types import Page
from tests.api.pdfgen import make_pdf
from tests.bombs import docx_bomb, pdf_bomb


@pytest.fixture
def pool_for(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., ParserPool]]:
    pools: list[ParserPool] = []

    def build(**overrides: object) -> ParserPool:
        pools.append(ParserPool(make_settings(**overrides)))
        return pools[-1]

    yield build
    for pool in pools:
        pool.close()


def read(pool: ParserPool, path: Path, heartbeat: Callable[[], None] | None = None) -> list[Page]:
    loaded = pool.load(path, sniff(path), heartbeat=heartbeat)
    try:
        return list(loaded.pages)
    finally:
        loaded.release()


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_pdf_bomb_runs_out_of_memory_in_the_child_not_here(
    tmp_path: Path, pool_for: Callable[..., ParserPool]
) -> None:
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(pdf_bomb(200))  # 0.5 MB on disk; PDFium held 4.2 GB reading it
    pool = pool_for(parse_memory_mb=512)
    before = resident_mb()
    started = time.monotonic()
    with pytest.raises(ResourceLimit) as info:
        read(pool, bomb)
    assert (info.value.code, info.value.extra["limit"]) == ("resource_limit", "memory")
    assert time.monotonic() - started < 60
    assert resident_mb() - before < 50  # the memory went with the child
    ok = tmp_path / "ok.pdf"
    ok.write_bytes(make_pdf(["The pool reads the next document with a fresh child."]))
    assert "fresh child" in read(pool, ok)[0].text


def test_a_docx_bomb_is_refused_by_its_ratio_and_otherwise_by_memory(
    tmp_path: Path, pool_for: Callable[..., ParserPool]
) -> None:
    bomb = tmp_path / "bomb.docx"
    bomb.write_bytes(docx_bomb(210))  # 0.8 MB inflating to 210 MB of XML
    started = time.monotonic()
    with pytest.raises(ResourceLimit) as info:
        read(pool_for(), bomb)
    assert info.value.extra["limit"] == "inflation" and time.monotonic() - started < 10
    # a ratio that lets it through meets the memory limit instead (python-docx's tree is ~4x the XML)
    with pytest.raises(ResourceLimit) as info:
        read(pool_for(max_inflation=1000, parse_memory_mb=512), bomb)
    assert info.value.extra["limit"] == "memory"


def test_a_page_that_takes_too_long_is_stopped(tmp_path: Path, pool_for: Callable[..., ParserPool]) -> None:
    bomb = tmp_path / "slow.pdf"
    bomb.write_bytes(pdf_bomb(200))
    started = time.monotonic()
    with pytest.raises(ResourceLimit) as info:
        read(pool_for(parse_memory_mb=4096, parse_page_timeout_s=1.5), bomb)
    assert info.value.extra["limit"] == "time" and "RAG_PARSE_PAGE_TIMEOUT_S" in info.value.message
    assert time.monotonic() - started < 10


def test_a_document_reads_to_at_most_its_character_budget(
    tmp_path: Path, pool_for: Callable[..., ParserPool]
) -> None:
    text = tmp_path / "long.txt"
    text.write_text("Plain words in a long file. " * 2000)
    assert len(read(pool_for(max_document_chars=60_000), text)[0].text) == 56_000
    with pytest.raises(ResourceLimit) as info:
        read(pool_for(max_document_chars=50_000), text)
    assert info.value.extra["limit"] == "characters"


def test_a_cancelled_read_stops_at_once_and_its_child_dies(
    tmp_path: Path, pool_for: Callable[..., ParserPool]
) -> None:
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(pdf_bomb(200))
    pool = pool_for(parse_memory_mb=4096)
    started = time.monotonic()

    def heartbeat() -> None:
        if time.monotonic() - started > 1.0:
            raise JobCancelled("cancelled by its owner")

    with pytest.raises(JobCancelled):
        read(pool, bomb, heartbeat)
    assert time.monotonic() - started < 3
    assert pool._idle == []  # the child reading the bomb was killed, not kept


def test_children_are_reused_and_an_abandoned_read_kills_its_child(
    tmp_path: Path, pool_for: Callable[..., ParserPool]
) -> None:
    pool = pool_for()
    first = tmp_path / "first.txt"
    first.write_text("The first document.")
    read(pool, first)
    (child,) = pool._idle
    read(pool, first)
    assert pool._idle == [child]  # the same process read the second document
    many = tmp_path / "many.pdf"
    many.write_bytes(make_pdf([f"Page {n} of many." for n in range(30)]))
    loaded = pool.load(many, "pdf")
    assert next(loaded.pages).page_no == 1
    loaded.release()  # given up after one page
    assert pool._idle == [] and child.proc.poll() is not None


def test_a_warmed_child_waits_with_the_pdf_reader_loaded_and_reads_the_first_document(
    tmp_path: Path, pool_for: Callable[..., ParserPool]
) -> None:
    pool = pool_for()
    pool.warm()
    (child,) = pool._idle
    assert child.alive
    document = tmp_path / "first.pdf"
    document.write_bytes(make_pdf(["The first document, read by the warmed child."]))
    assert "warmed child" in read(pool, document)[0].text
    assert pool._idle == [child]
    assert pool_for(parse_isolation="inline").warm() is None  # nothing to warm in-process


def test_loader_errors_arrive_as_themselves(tmp_path: Path, pool_for: Callable[..., ParserPool]) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(make_pdf(["Half a document."])[:200])
    with pytest.raises(CorruptDocument):
        read(pool_for(), broken)


def test_inline_and_child_reads_give_the_same_pages(
    tmp_path: Path, pool_for: Callable[..., ParserPool]
) -> None:
    pdf = tmp_path / "pages.pdf"
    pdf.write_bytes(make_pdf([f"Section {n}. The harbour logged {n * 7} ships." for n in range(5)]))
    assert read(pool_for(), pdf) == read(pool_for(parse_isolation="inline"), pdf)


def test_the_parser_runs_at_its_configured_niceness(pool_for: Callable[..., ParserPool]) -> None:
    """Reading yields the CPU to the embedder and to queries (``RAG_PARSE_NICENESS``)."""
    for niceness in (10, 3):
        pool = pool_for(parse_niceness=niceness)
        pool.warm()
        (child,) = pool._idle
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, child.proc.pid) == min(19, own + niceness)
