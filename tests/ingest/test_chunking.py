"""The chunker on real text and on generated adversarial text: offsets, limits, coverage, overlap."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from ingest.chunking import CONTEXT_TOKENS, Chunker, sentence_spans
from ingest.profile import DocumentProfile
from ingest.tables import read_tables
from rag.errors import ConfigurationError, DocumentError
from rag.models import bundled_model_path
from rag.tokens import count_tokens, get_encoding
from rag.types import PAGE_SEPARATOR, Chunk, Heading, Page, chunk_id

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def squad_contexts(datasets: Path) -> list[str]:
    data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    return [p["context"] for a in data["data"] for p in a["paragraphs"]]


@pytest.fixture(scope="module")
def covid_papers(datasets: Path) -> list[str]:
    data = json.loads((datasets / "covidqa_deepset_200423" / "200423_covidQA.json").read_text())
    return [a["paragraphs"][0]["context"] for a in data["data"]]


@pytest.fixture(scope="module")
def sentence_pool(squad_contexts: list[str]) -> list[str]:
    """Real sentences, cut naively: the generator only needs realistic prose, not exact sentences."""
    pool = [s for text in squad_contexts[:60] for s in re.split(r"(?<=[.!?])\s+", text) if s]
    assert len(pool) > 200
    return pool


@pytest.fixture(scope="module")
def wordpiece() -> Callable[[str], int]:
    """The real all-MiniLM tokenizer (tokenizers only, no model): counts like ``Embedder.count_tokens``."""
    bundle = bundled_model_path(MINILM)
    assert bundle is not None, "the bundled all-MiniLM-L6-v2 package is a dependency"
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: len(tokenizer.encode(text).ids)


# --- invariants --------------------------------------------------------------------------


def doc_text(pages: list[Page]) -> str:
    return PAGE_SEPARATOR.join(p.text for p in pages)


def page_of(pages: list[Page], offset: int) -> int:
    base = 0
    for page in pages:
        if offset < base + len(page.text):
            return page.page_no
        base += len(page.text) + len(PAGE_SEPARATOR)
    raise AssertionError(f"offset {offset} is outside every page")


def expected_heading(pages: list[Page], offset: int) -> str | None:
    found: str | None = None
    base = 0
    for page in pages:
        for h in sorted(page.headings, key=lambda h: h.offset):
            if h.text.strip() and base + min(max(h.offset, 0), len(page.text)) <= offset:
                found = h.text.strip()
        base += len(page.text) + len(PAGE_SEPARATOR)
    return found


def check_chunks(
    chunks: list[Chunk],
    pages: list[Page],
    *,
    doc_id: str,
    chunk_tokens: int,
    overlap_tokens: int,
    model: Callable[[str], int] | None = None,
    model_max: int | None = None,
    tables: bool = False,
) -> None:
    """Everything the chunker promises about one document, checked from the outside.

    With ``tables``, offsets index the pages as the table reader rewrote them, and a chunk that
    starts inside a table starts with that table's header lines (outside its span).
    """
    headers: set[str] = set()
    if tables:
        pages, headers = rewritten_pages(pages)
    text = doc_text(pages)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered = bytearray(len(text))
    for c in chunks:
        assert c.id == chunk_id(doc_id, c.ordinal) and c.doc_id == doc_id
        span = text[c.char_start : c.char_end]
        assert c.text == span or any(c.text == f"{h}\n{span}" for h in headers)
        assert c.text and c.text == c.text.strip()
        assert c.token_count == count_tokens(c.text) <= chunk_tokens
        if model is not None and model_max is not None:
            assert model(c.embedded_text) <= model_max
        assert c.page_start == page_of(pages, c.char_start)
        assert c.page_end == page_of(pages, c.char_end - 1)
        assert c.heading == expected_heading(pages, c.char_start)
        covered[c.char_start : c.char_end] = b"\x01" * (c.char_end - c.char_start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"characters in no chunk, e.g. {text[missing[0] : missing[0] + 40]!r}"
    # Progress, and overlap that is made of whole sentences (or whole lines) within its budget.
    starts = sentence_starts(pages)
    for prev, nxt in pairwise(chunks):
        assert prev.char_start < nxt.char_start and prev.char_end < nxt.char_end
        if nxt.char_start < prev.char_end:
            assert count_tokens(text[nxt.char_start : prev.char_end]) <= overlap_tokens
            assert nxt.char_start in starts, f"overlap starts mid-sentence: {text[nxt.char_start :][:60]!r}"


def rewritten_pages(pages: list[Page]) -> tuple[list[Page], set[str]]:
    """The pages as the chunker sees them with ``tables`` on, and their tables' header lines."""
    out: list[Page] = []
    headers: set[str] = set()
    for page in pages:
        read = read_tables(page.text)
        headings = tuple(Heading(read.map_offset(h.offset), h.text, h.level) for h in page.headings)
        out.append(Page(page.page_no, read.text, page.source, headings=headings))
        headers.update(h for t in read.tables for h in (t.header, t.column_header))
    return out, headers


LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]\s*")  # what str.splitlines splits on


def sentence_starts(pages: list[Page]) -> set[int]:
    """Where a sentence or a line begins, in document offsets."""
    starts: set[int] = set()
    base = 0
    for page in pages:
        breaks = [h.offset for h in page.headings] + [h.offset + len(h.text) for h in page.headings]
        starts.update(base + s for s, _ in sentence_spans(page.text, breaks))
        starts.update(base + m.end() for m in LINE_BREAK.finditer(page.text))
        base += len(page.text) + len(PAGE_SEPARATOR)
    return starts


def chunk(chunker: Chunker, pages: list[Page], doc_id: str = "doc") -> list[Chunk]:
    return list(chunker.chunk(doc_id, pages))


# --- generated documents -----------------------------------------------------------------

GARBAGE = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
LONG_TOKEN = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["x", "9", "ab1", "é", "🙂", "=-", "%20"]),
    st.integers(50, 2500),
)
TABLE_ROW = st.lists(st.integers(0, 10**9).map(str), min_size=3, max_size=60).map(" | ".join)
SEPARATOR = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  ", "\n \n", "\t", "\r\n"])


FIGURES = st.sampled_from(["1,577", "(1,373)", "$ 5,363", "23.4 %", "—", "7", "(0.8)"])


@st.composite
def financial_table(draw: st.DrawFn) -> str:
    """A table as a PDF text layer has it: a title, a header of periods, labelled rows of figures."""
    columns = draw(st.integers(1, 4))
    lines = [draw(st.sampled_from(["Consolidated Statement of Cash Flows", "Segment results", ""]))]
    lines.append(
        draw(st.sampled_from(["(Millions) ", "", "($ in millions) "]))
        + " ".join(str(2023 - i) for i in range(columns))
    )
    for i in range(draw(st.integers(0, 30))):
        figures = " ".join(draw(FIGURES) for _ in range(columns + draw(st.sampled_from([0, 0, 0, 1]))))
        label = draw(
            st.sampled_from(["Net income", "Purchases of property, plant and equipment", "Other — net"])
        )
        lines.append(draw(st.sampled_from([f"{label} {i} {figures}", f"{label} {figures}", label, figures])))
    return "\n".join(lines)


@st.composite
def page_texts(draw: st.DrawFn, pool: list[str], tables: bool = False) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["sentence"] * 6 + ["garbage", "long", "row"] + ["table"] * (2 * tables)))
        if kind == "sentence":
            parts.append(draw(st.sampled_from(pool)))
        elif kind == "garbage":
            parts.append(draw(GARBAGE))
        elif kind == "long":
            parts.append(draw(LONG_TOKEN))
        elif kind == "table":
            parts.append(draw(financial_table()))
        else:
            parts.append(draw(TABLE_ROW))
        parts.append(draw(SEPARATOR))
    return "".join(parts)


@st.composite
def documents(draw: st.DrawFn, pool: list[str], tables: bool = False) -> list[Page]:
    pages: list[Page] = []
    page_no = 0
    for _ in range(draw(st.integers(1, 4))):
        page_no += draw(st.integers(1, 2))
        text = draw(st.one_of(page_texts(pool, tables), st.sampled_from(["", "   ", "\n\n"])))
        headings: list[Heading] = []
        for _ in range(draw(st.integers(0, 2))):
            offset = draw(st.integers(0, len(text)))
            title = text[offset : offset + draw(st.integers(0, 30))] if draw(st.booleans()) else "Stray title"
            headings.append(Heading(offset, title))
        pages.append(Page(page_no, text, "text", headings=tuple(headings)))
    return pages


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_generated_documents_keep_every_promise(data, sentence_pool, wordpiece) -> None:
    pages = data.draw(documents(sentence_pool), label="pages")
    chunk_tokens = data.draw(st.integers(16, 160), label="chunk_tokens")
    overlap_tokens = data.draw(st.integers(0, chunk_tokens - 1), label="overlap_tokens")
    model_max = data.draw(st.one_of(st.none(), st.integers(16, 200)), label="model_max")
    chunker = Chunker(
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        model_token_counter=wordpiece if model_max else None,
        model_max_tokens=model_max,
    )
    chunks = chunk(chunker, pages)
    check_chunks(
        chunks,
        pages,
        doc_id="doc",
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        model=wordpiece if model_max else None,
        model_max=model_max,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_generated_documents_with_tables_and_context_headers(data, sentence_pool, wordpiece) -> None:
    pages = data.draw(documents(sentence_pool, tables=True), label="pages")
    chunk_tokens = data.draw(st.integers(40, 200), label="chunk_tokens")
    overlap_tokens = data.draw(st.integers(0, chunk_tokens // 4), label="overlap_tokens")
    model_max = data.draw(st.one_of(st.none(), st.integers(96, 256)), label="model_max")
    chunker = Chunker(
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        model_token_counter=wordpiece if model_max else None,
        model_max_tokens=model_max,
        tables=True,
        context_headers=True,
        embed_context=True,
    )
    profile = DocumentProfile(filer="ACME CORP", form="10-K", period="fiscal year ended December 31, 2023")
    chunks = list(chunker.chunk("doc", pages, profile))
    check_chunks(
        chunks,
        pages,
        doc_id="doc",
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        model=wordpiece if model_max else None,
        model_max=model_max,
        tables=True,
    )
    for c in chunks:
        assert c.context.startswith("ACME CORP 10-K fiscal year ended")
        assert c.context.endswith(f"page {c.page_start}" if c.page_start == c.page_end else f"-{c.page_end}")
        assert count_tokens(c.context) <= CONTEXT_TOKENS


# --- sentences ---------------------------------------------------------------------------


def sentences_of(text: str, breaks: tuple[int, ...] = ()) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text, breaks)]


def test_sentences_come_from_a_real_segmenter() -> None:
    text = (
        "Dr. Smith arrived at 5 p.m. on Monday. He met Mr. Jones, e.g. at the U.S. embassy. Was it late? Yes!"
    )
    assert sentences_of(text) == [
        "Dr. Smith arrived at 5 p.m. on Monday.",
        "He met Mr. Jones, e.g. at the U.S. embassy.",
        "Was it late?",
        "Yes!",
    ]


def test_wrapped_lines_are_not_sentences_but_blank_lines_and_list_items_are_boundaries() -> None:
    text = (
        "The results were\nconfirmed by the\nsecond study. It ran for\ntwo years"
        "\n\nTable 2\n- first item\n- second item"
    )
    assert sentences_of(text) == [
        "The results were\nconfirmed by the\nsecond study.",
        "It ran for\ntwo years",
        "Table 2",
        "- first item",
        "- second item",
    ]


def test_sentences_partition_squad_text_exactly(squad_contexts: list[str]) -> None:
    for text in squad_contexts[:80]:
        spans = list(sentence_spans(text))
        assert all(a[1] <= b[0] for a, b in pairwise(spans))
        assert all(0 <= s < e <= len(text) for s, e in spans)
        assert re.sub(r"\s+", "", "".join(text[s:e] for s, e in spans)) == re.sub(r"\s+", "", text)
        assert len(spans) >= text.count(". ") // 3  # real segmentation, not one blob per paragraph


@pytest.mark.timeout(20)
def test_inputs_that_hang_upstream_pysbd_return_quickly() -> None:
    # pySBD issues #58/#79: its numbered-reference regex backtracks exponentially on these.
    texts = [
        "..[" + " ".join(["111"] * 40) + "]",
        "......[289852000000260698,289852000000260744" + "0" * 40,
        "Rok bud." + "2027777983834843834843042003200220012000" * 4,
    ]
    chunker = Chunker(chunk_tokens=64, overlap_tokens=8)
    for text in texts:
        pages = [Page(1, text, "text")]
        check_chunks(chunk(chunker, pages), pages, doc_id="doc", chunk_tokens=64, overlap_tokens=8)


# --- real documents ----------------------------------------------------------------------


def test_covid_papers_are_packed_full_with_sentence_overlap(covid_papers: list[str]) -> None:
    chunker = Chunker(chunk_tokens=200, overlap_tokens=40)
    fills: list[int] = []
    overlapping = 0
    for i, paper in enumerate(covid_papers[:4]):
        pages = [Page(1, paper, "text")]
        chunks = chunk(chunker, pages, doc_id=f"paper{i}")
        check_chunks(chunks, pages, doc_id=f"paper{i}", chunk_tokens=200, overlap_tokens=40)
        fills += [c.token_count for c in chunks[:-1]]
        overlapping += sum(b.char_start < a.char_end for a, b in pairwise(chunks))
    assert sum(fills) / len(fills) >= 150  # greedy packing, not one chunk per paragraph
    assert overlapping >= len(fills) // 2


def test_overlap_is_the_longest_run_of_last_sentences_within_budget(squad_contexts: list[str]) -> None:
    text = " ".join(squad_contexts[:6])
    pages = [Page(1, text, "text")]
    chunker = Chunker(chunk_tokens=120, overlap_tokens=40)
    chunks = chunk(chunker, pages)
    check_chunks(chunks, pages, doc_id="doc", chunk_tokens=120, overlap_tokens=40)
    spans = list(sentence_spans(text))
    starts = [s for s, _ in spans]
    checked = 0
    for prev, nxt in pairwise(chunks):
        inside = [s for s in starts if prev.char_start <= s < prev.char_end]
        first_new = nxt.char_start if nxt.char_start < prev.char_end else prev.char_end
        before = [s for s in inside if s < first_new]
        if len(before) < 2:
            continue  # the overlap may never be the whole previous chunk
        # one more sentence would have broken the budget
        assert count_tokens(text[before[-1] : prev.char_end]) > 40
        checked += 1
    assert checked >= len(chunks) // 2


def test_pages_headings_and_page_spans(squad_contexts: list[str]) -> None:
    bodies = [t for t in squad_contexts if 110 <= count_tokens(t) <= 180][:6]
    pages = [
        Page(n, f"Section {n}\n\n{body}", "text", headings=(Heading(0, f"Section {n}"),))
        for n, body in enumerate(bodies, start=1)
    ]
    pages.insert(3, Page(4, "", "ocr"))  # a blank page still takes its place in the offsets
    pages = [Page(i, p.text, p.source, headings=p.headings) for i, p in enumerate(pages, start=1)]
    chunks = chunk(Chunker(chunk_tokens=200, overlap_tokens=40), pages)
    check_chunks(chunks, pages, doc_id="doc", chunk_tokens=200, overlap_tokens=40)
    # every section is more than half a chunk, so each one starts a chunk of its own
    with_text = [p for p in pages if p.text]
    assert [(c.page_start, c.page_end, c.heading) for c in chunks] == [
        (p.page_no, p.page_no, p.headings[0].text) for p in with_text
    ]
    assert all(c.text.startswith(c.heading or "?") for c in chunks)


def test_a_page_that_ends_a_sentence_ends_the_chunk(squad_contexts: list[str]) -> None:
    bodies = [t for t in squad_contexts if 100 <= count_tokens(t) <= 180 and t.rstrip().endswith(".")][:5]
    pages = [Page(n, body, "text-layer") for n, body in enumerate(bodies, start=1)]
    chunks = chunk(Chunker(chunk_tokens=200, overlap_tokens=40), pages)
    # each page is more than half a chunk and ends a sentence: one chunk per page, none straddling
    assert [(c.page_start, c.page_end) for c in chunks] == [(p.page_no, p.page_no) for p in pages]
    assert [c.text for c in chunks] == [p.text.strip() for p in pages]


def test_a_sentence_running_onto_the_next_page_stays_in_one_chunk() -> None:
    pages = [
        Page(1, "The trial enrolled 400 patients. The results were", "text-layer"),
        Page(2, "confirmed by a second study in 2021. Nothing else changed.", "text-layer"),
    ]
    chunks = chunk(Chunker(chunk_tokens=64, overlap_tokens=8), pages)
    assert len(chunks) == 1
    assert (chunks[0].page_start, chunks[0].page_end) == (1, 2)
    assert "were\n\nconfirmed" in chunks[0].text


def test_a_table_dump_without_punctuation_is_cut_at_token_boundaries(covid_papers: list[str]) -> None:
    row = " ".join(f"{i * 7919 % 100003}.{i % 97} mg/L" for i in range(3000))  # one enormous "sentence"
    prose = covid_papers[0][:1500]
    pages = [Page(1, prose + "\n\n" + row + "\n\n" + prose, "text")]
    chunker = Chunker(chunk_tokens=200, overlap_tokens=40)
    chunks = chunk(chunker, pages)
    check_chunks(chunks, pages, doc_id="doc", chunk_tokens=200, overlap_tokens=40)
    row_start = len(prose) + 2
    encoding = get_encoding()
    _, offsets = encoding.decode_with_offsets(encoding.encode_ordinary(row))
    token_starts = set()  # where a token starts, past any whitespace it begins with
    for o in offsets:
        while row[o].isspace():
            o += 1
        token_starts.add(row_start + o)
    inside = [c for c in chunks if row_start < c.char_start < row_start + len(row)]
    assert len(inside) >= count_tokens(row) // 200
    assert all(c.char_start in token_starts for c in inside)
    assert sum(c.token_count for c in inside) >= count_tokens(row) * 0.95  # windows are nearly full


def test_a_table_with_rows_on_lines_is_cut_between_rows() -> None:
    rows = [" ".join(str(i * j) for j in range(1, 12)) for i in range(1, 120)]
    text = "\n".join(rows)
    pages = [Page(1, text, "text")]
    chunks = chunk(Chunker(chunk_tokens=100, overlap_tokens=20), pages)
    check_chunks(chunks, pages, doc_id="doc", chunk_tokens=100, overlap_tokens=20)
    line_starts = {0} | {m.end() for m in re.finditer("\n", text)}
    line_ends = {m.start() for m in re.finditer("\n", text)} | {len(text)}
    assert all(c.char_start in line_starts and c.char_end in line_ends for c in chunks)


def test_the_model_limit_shrinks_chunks_of_numbers(wordpiece: Callable[[str], int]) -> None:
    text = " ".join(
        f"Sample {i} measured 0.{i * 7919 % 10007:04d}±{i % 13}.{i % 7} ({i * 31 % 997}/{i}) units."
        for i in range(400)
    )
    pages = [Page(1, text, "text")]
    unlimited = chunk(Chunker(chunk_tokens=200, overlap_tokens=30), pages)
    assert max(wordpiece(c.text) for c in unlimited) > 120  # the limit below really binds
    limited_chunker = Chunker(
        chunk_tokens=200, overlap_tokens=30, model_token_counter=wordpiece, model_max_tokens=120
    )
    limited = chunk(limited_chunker, pages)
    check_chunks(
        limited, pages, doc_id="doc", chunk_tokens=200, overlap_tokens=30, model=wordpiece, model_max=120
    )
    assert sum(wordpiece(c.text) for c in limited) / len(limited) >= 80  # shrunk, not shredded


@pytest.mark.slow
def test_numbers_never_exceed_the_real_embedders_window(embedder, make_settings, covid_papers) -> None:
    rows = "\n".join(
        " ".join(f"{(i * 104729 + j * 7) % 10**7 / 1000:.3f}" for j in range(40)) + f" Ref{i}."
        for i in range(60)
    )
    pages = [Page(1, covid_papers[1], "text"), Page(2, rows, "text"), Page(3, covid_papers[2][:3000], "text")]
    settings = make_settings(chunk_tokens=250, chunk_overlap_tokens=40)
    chunker = Chunker.from_settings(settings, embedder)
    chunks = chunk(chunker, pages)
    check_chunks(
        chunks,
        pages,
        doc_id="doc",
        chunk_tokens=250,
        overlap_tokens=40,
        model=embedder.count_tokens,
        model_max=embedder.max_tokens,
    )
    assert embedder.max_tokens == 256
    plain = chunk(Chunker(chunk_tokens=250, overlap_tokens=40), pages)
    assert max(embedder.count_tokens(c.text) for c in plain) > 256  # without the limit it would overflow


# --- streaming and errors ----------------------------------------------------------------


def test_pages_are_read_lazily(squad_contexts: list[str]) -> None:
    read: list[int] = []

    def pages() -> Iterator[Page]:
        for n, text in enumerate(squad_contexts[:50], start=1):
            read.append(n)
            yield Page(n, text, "text")

    stream = Chunker(chunk_tokens=200, overlap_tokens=40).chunk("doc", pages())
    first = next(stream)
    assert first.ordinal == 0 and len(read) <= 3
    assert sum(1 for _ in stream) > 40 and len(read) == 50


def test_documents_without_text_have_no_chunks() -> None:
    chunker = Chunker(chunk_tokens=64, overlap_tokens=8)
    assert chunk(chunker, []) == []
    assert chunk(chunker, [Page(1, "", "ocr"), Page(2, " \n\t ", "ocr")]) == []


def test_pages_out_of_order_are_a_document_error() -> None:
    pages = [Page(2, "Second page.", "text"), Page(1, "First page.", "text")]
    with pytest.raises(DocumentError, match="increasing order"):
        chunk(Chunker(chunk_tokens=64, overlap_tokens=8), pages)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_tokens": 8, "overlap_tokens": 0}, "chunk_tokens"),
        ({"chunk_tokens": 100, "overlap_tokens": 100}, "overlap_tokens"),
        ({"chunk_tokens": 100, "overlap_tokens": -1}, "overlap_tokens"),
        ({"chunk_tokens": 100, "overlap_tokens": 10, "model_max_tokens": 256}, "go together"),
        (
            {
                "chunk_tokens": 100,
                "overlap_tokens": 10,
                "model_token_counter": len,
                "model_max_tokens": 32,
                "context_headers": True,
            },
            "context headers",
        ),
    ],
)
def test_bad_configuration_is_a_configuration_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Chunker(**kwargs)


def test_from_settings_without_an_embedder(make_settings) -> None:
    chunker = Chunker.from_settings(make_settings(chunk_tokens=120, chunk_overlap_tokens=20), None)
    assert (chunker.chunk_tokens, chunker.overlap_tokens) == (120, 20)
    assert chunker.tables and chunker.context_headers  # both levers are on by default
    plain = Chunker.from_settings(make_settings(tables=False, context_headers="off"), None)
    assert not plain.tables and not plain.context_headers
