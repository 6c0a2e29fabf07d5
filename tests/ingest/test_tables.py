"""The table reader and table-aware chunking on real filings: rows under their headers."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.chunking import Chunker
from ingest.loaders import load_document
from ingest.tables import TablePage, join_broken_lines, parse_row, read_tables
from rag.settings import Settings
from rag.tokens import count_tokens
from rag.types import PAGE_SEPARATOR, Chunk, Page

PPE_ROW = "Purchases of property, plant and equipment (PP&E): 2018: (1,577); 2017: (1,373); 2016: (1,420) (Millions)"
CASH_FLOW_PAGE = 60  # 3M_2018_10K: the consolidated statement of cash flows (zero-based page 59)


def pdf_page(financebench: Path, doc: str, page_no: int, settings: Settings) -> Page:
    """One page of a FinanceBench filing as the PDF loader reads it (1-based ``page_no``)."""
    loaded = load_document(financebench / "pdfs" / f"{doc}.pdf", settings)
    return next(itertools.islice(loaded.pages, page_no - 1, None))


@pytest.fixture(scope="module")
def cash_flow_page(financebench: Path) -> Page:
    from rag.settings import load_settings

    return pdf_page(financebench, "3M_2018_10K", CASH_FLOW_PAGE, load_settings(ocr_enabled=False))


def rows_of(read: TablePage) -> list[str]:
    """Each table row (the last line of its span: section labels may come before it)."""
    return [read.text[s:e].rsplit("\n", 1)[-1] for t in read.tables for s, e in t.rows]


def check_edits(original: str, read: TablePage) -> None:
    """The rewritten text is the original (its broken lines joined, the same length) with each
    edited span replaced, and nothing else."""
    if read.tables:
        joined = join_broken_lines(original)
        assert len(joined) == len(original)
        original = joined
    rebuilt, pos = [], 0
    for old_start, old_end, new_start, new_end in read.edits:
        rebuilt.append(original[pos:old_start])
        assert read.text[new_start:new_end] == read.text[new_start:new_end].strip()
        rebuilt.append(read.text[new_start:new_end])
        pos = old_end
    rebuilt.append(original[pos:])
    assert "".join(rebuilt) == read.text
    for table in read.tables:
        assert 0 <= table.start <= table.head_end <= table.end <= len(read.text)
        spans = [(table.head_end, table.head_end), *table.rows]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        assert table.rows[-1][1] == table.end


# --- the reader on real pages ------------------------------------------------------------


def test_cash_flow_rows_carry_their_column_headers(cash_flow_page: Page) -> None:
    read = read_tables(cash_flow_page.text)
    check_edits(cash_flow_page.text, read)
    (table,) = read.tables
    assert table.columns == ("2018", "2017", "2016")
    assert table.units == "(Millions)"
    assert "Consolidated Statement of Cash Flows" in table.title
    assert table.header.endswith("(Millions) 2018 2017 2016")
    rows = read.text.split("\n")
    assert PPE_ROW in rows
    # a label on its own line takes the bare numbers under it
    assert (
        "Proceeds from sale of businesses, net of cash sold: 2018: 846; 2017: 1,065; 2016: 142 (Millions)"
        in rows
    )
    assert (
        "Net income including noncontrolling interest: 2018: $5,363; 2017: $4,869; 2016: $5,058 (Millions)"
        in rows
    )
    assert table.serialised == 33
    # section labels and the text around the table keep their words
    assert "Cash Flows from Investing Activities" in rows
    assert rows[-1] == cash_flow_page.text.split("\n")[-1]  # the page number


@pytest.mark.parametrize(
    ("doc", "page_no", "row"),
    [
        # a period over two header lines: "Three Months Ended Six Months Ended" / four dates;
        # a row says each span once
        (
            "BESTBUY_2024Q2_10Q",
            17,
            "Revenue: Three Months Ended July 29, 2023: $8,890; July 30, 2022: $9,569; "
            "Six Months Ended July 29, 2023: $17,691; July 30, 2022: $19,463 ($ in millions)",
        ),
        # month-days over the years: "December 31, December 31," / "(Dollars in millions, ...) 2018 2017"
        (
            "3M_2018_10K",
            58,
            "Cash and cash equivalents: December 31, 2018: $2,853; December 31, 2017: $3,053 (in millions)",
        ),
        # a span heading dates: "Fiscal Years Ended January 28, 2023 January 29, 2022 January 30, 2021"
        (
            "BESTBUY_2023_10K",
            42,
            "Total cash provided by operating activities: January 28, 2023: 1,824; January 29, 2022: 3,252; "
            "January 30, 2021: 4,927 ($ in millions)",
        ),
    ],
)
def test_headers_over_two_lines_and_dates(financebench: Path, doc: str, page_no: int, row: str) -> None:
    from rag.settings import load_settings

    page = pdf_page(financebench, doc, page_no, load_settings(ocr_enabled=False))
    read = read_tables(page.text)
    check_edits(page.text, read)
    assert row in read.text.split("\n")


def test_a_page_without_tables_is_unchanged(financebench: Path) -> None:
    from rag.settings import load_settings

    page = pdf_page(financebench, "3M_2018_10K", 8, load_settings(ocr_enabled=False))
    assert len(re.findall(r"\b20\d\d\b", page.text)) > 10  # years in prose are not tables
    read = read_tables(page.text)
    assert read.text == page.text and read.tables == () and read.edits == ()
    assert read.map_offset(123) == 123


def test_a_whole_filing_keeps_everything_outside_its_tables(financebench: Path) -> None:
    from rag.settings import load_settings

    loaded = load_document(financebench / "pdfs" / "AMCOR_2023Q2_10Q.pdf", load_settings(ocr_enabled=False))
    tables = serialised = 0
    for page in loaded.pages:
        read = read_tables(page.text)
        check_edits(page.text, read)
        assert read_tables(read.text).text == read.text  # rewritten rows are not read again
        tables += len(read.tables)
        serialised += sum(t.serialised for t in read.tables)
    assert tables >= 20 and serialised >= 200


def test_a_span_over_month_days_and_years_is_said_once_per_group() -> None:
    text = (
        "Reconciliation of EBIT\n"
        "Three Months Ended December 31, Six Months Ended December 31,\n"
        "($ in millions) 2022 2021 2022 2021\n"
        "Net income 461 229 695 432\n"
        "EBIT 562 324 904 625\n"
        "The reconciliation above is unaudited and was prepared by management."
    )
    read = read_tables(text)
    check_edits(text, read)
    (table,) = read.tables
    assert table.columns == (
        "Three Months Ended December 31, 2022",
        "Three Months Ended December 31, 2021",
        "Six Months Ended December 31, 2022",
        "Six Months Ended December 31, 2021",
    )
    assert table.title == "Reconciliation of EBIT" and table.units == "($ in millions)"
    assert read.text.split("\n")[3] == (
        "Net income: Three Months Ended December 31, 2022: 461; 2021: 229; "
        "Six Months Ended December 31, 2022: 695; 2021: 432 ($ in millions)"
    )
    assert read.text.endswith("\nThe reconciliation above is unaudited and was prepared by management.")


def test_row_parsing() -> None:
    row = parse_row("Gross profit as a % of revenue 23.1 % 22.0 % 22.9 % 22.0 %")
    assert row is not None and row.label == "Gross profit as a % of revenue"
    assert row.cells == ["23.1%", "22.0%", "22.9%", "22.0%"]
    row = parse_row("Restructuring charges $ (7) $ 34 $ (15) $ 34")
    assert row is not None and row.cells == ["$(7)", "$34", "$(15)", "$34"]
    row = parse_row("Acquisitions, net of cash acquired — — (25)")
    assert row is not None and row.cells == ["—", "—", "(25)"]
    row = parse_row("Total provisions $s 2,182 _ 4,730")  # tesseract's dollar sign and dash
    assert row is not None and row.cells == ["$2,182", "—", "4,730"]
    assert parse_row("The Company repurchased shares in fiscal 2023.") is None


# --- chunking tables ----------------------------------------------------------------------


def chunk_pages(pages: list[Page], **kwargs: object) -> list[Chunk]:
    options: dict[str, object] = {"chunk_tokens": 200, "overlap_tokens": 40, "tables": True}
    options.update(kwargs)
    return list(Chunker(**options).chunk("doc", pages))  # type: ignore[arg-type]


def rewritten(pages: list[Page]) -> tuple[str, list[TablePage]]:
    reads = [read_tables(p.text) for p in pages]
    return PAGE_SEPARATOR.join(r.text for r in reads), reads


def test_a_long_table_is_split_by_rows_with_its_header_repeated(cash_flow_page: Page) -> None:
    pages = [Page(CASH_FLOW_PAGE, cash_flow_page.text, "text-layer")]
    chunks = chunk_pages(pages)
    text, (read,) = rewritten(pages)
    (table,) = read.tables
    inside = [c for c in chunks if c.char_end > table.head_end and c.char_start < table.end]
    assert len(inside) >= 4  # 33 rows of about 25 tokens each
    assert table.header in inside[0].text and inside[0].char_start <= table.start
    row_starts = {s for s, _ in table.rows}
    row_ends = {e for _, e in table.rows}
    for c in inside[1:]:
        # every later piece starts with the title and header lines, then whole rows
        assert c.text == f"{table.header}\n{text[c.char_start : c.char_end]}"
        assert c.char_start in row_starts
        assert c.token_count == count_tokens(c.text) <= 200
    for c in inside[:-1]:
        assert c.char_end in row_ends  # cut between rows
    assert all(a.char_end < b.char_start for a, b in itertools.pairwise(inside))  # rows are never overlap
    (ppe,) = [c for c in chunks if PPE_ROW in c.text]
    assert ppe.page_start == ppe.page_end == CASH_FLOW_PAGE
    assert ppe.text.startswith(table.header)


def test_a_table_that_fits_starts_a_chunk_of_its_own(financebench: Path) -> None:
    from rag.settings import load_settings

    settings = load_settings(ocr_enabled=False)
    pages = [
        pdf_page(financebench, "BESTBUY_2023_10K", 51, settings)
    ]  # restructuring note: prose, small table
    _, (read,) = rewritten(pages)
    table = read.tables[0]
    chunks = chunk_pages(pages, chunk_tokens=400)
    (holder,) = [c for c in chunks if c.char_start <= table.start < c.char_end]
    assert holder.char_start == table.start and holder.char_end >= table.end


def test_pages_and_offsets_stay_exact_across_a_filing(financebench: Path) -> None:
    from rag.settings import load_settings

    loaded = load_document(financebench / "pdfs" / "AMCOR_2023Q2_10Q.pdf", load_settings(ocr_enabled=False))
    pages = list(loaded.pages)
    chunks = chunk_pages(pages)
    text, reads = rewritten(pages)
    bounds = list(itertools.accumulate(len(r.text) + len(PAGE_SEPARATOR) for r in reads))
    headers = {h for r in reads for t in r.tables for h in (t.header, t.column_header)}
    covered = bytearray(len(text))
    for c in chunks:
        span = text[c.char_start : c.char_end]
        assert c.text == span or any(c.text == f"{h}\n{span}" for h in headers)
        assert c.page_start == pages[next(i for i, b in enumerate(bounds) if c.char_start < b)].page_no
        assert c.page_end == pages[next(i for i, b in enumerate(bounds) if c.char_end - 1 < b)].page_no
        covered[c.char_start : c.char_end] = b"\x01" * (c.char_end - c.char_start)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))


def test_tables_off_or_no_tables_chunks_as_before(financebench: Path) -> None:
    from rag.settings import load_settings

    settings = load_settings(ocr_enabled=False)
    prose = [pdf_page(financebench, "3M_2018_10K", n, settings) for n in (8, 9, 10, 11)]
    assert chunk_pages(prose, tables=True) == chunk_pages(prose, tables=False)


# --- OCR ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_scanned_cash_flow_rows_keep_their_numbers(
    datasets: Path, cash_flow_page: Page, settings: Settings
) -> None:
    scanned = datasets / "financebench_scanned_evidence" / "pdfs" / "3M_2018_10K_p59.pdf"
    (page,) = list(load_document(scanned, settings).pages)
    assert page.source == "ocr"
    read = read_tables(page.text)
    check_edits(page.text, read)
    (table,) = read.tables
    assert table.columns == ("2018", "2017", "2016") and table.units == "(Millions)"
    assert PPE_ROW in read.text.split("\n")
    # the rows of the text layer, rewritten the same way from the scan: each OCR'd row kept its
    # figures on its label's line (the misses are misread digits, e.g. "(111)" read as "(il)")
    gold = [r for r in rows_of(read_tables(cash_flow_page.text)) if ": 2018: " in r]
    got = set(read.text.split("\n"))
    assert len(gold) == 33 and sum(r in got for r in gold) >= 30


# --- generated text -------------------------------------------------------------------------

LABELS = st.sampled_from(["Revenue", "Cost of sales", "Net income", "Other — net", "Total assets", "EPS"])
CELLS = st.sampled_from(["1,577", "(1,373)", "$ 5,363", "23.4 %", "—", "7", "(0.8)", "12.5%"])
PROSE = st.sampled_from(
    [
        "Revenue grew in 2022 compared with 2021.",
        "The Company repurchased shares.",
        "Table of Contents",
        "Consolidated Statements of Income",
        "(Millions)",
        "12",
    ]
)


@st.composite
def table_text(draw: st.DrawFn) -> str:
    years = draw(
        st.lists(st.sampled_from(["2023", "2022", "2021", "Fiscal 2020", "Q2 2019"]), min_size=1, max_size=4)
    )
    lines = [draw(PROSE) for _ in range(draw(st.integers(0, 3)))]
    lines.append(" ".join([draw(st.sampled_from(["", "(Millions)", "($ in millions)"])), *years]).strip())
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["row", "row", "row", "label", "numbers", "prose", "blank"]))
        n = len(years) + draw(st.sampled_from([0, 0, 0, 1, -1]))
        cells = " ".join(draw(CELLS) for _ in range(max(n, 0)))
        if kind == "row":
            lines.append(f"{draw(LABELS)} {cells}")
        elif kind == "label":
            lines.append(draw(LABELS))
        elif kind == "numbers":
            lines.append(cells)
        elif kind == "prose":
            lines.append(draw(PROSE))
        else:
            lines.append("")
    return "\n".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.one_of(table_text(), st.text(max_size=60)), min_size=1, max_size=4))
def test_generated_pages_rewrite_only_table_rows(parts: list[str]) -> None:
    text = "\n".join(parts)
    read = read_tables(text)
    check_edits(text, read)
    chunks = list(
        Chunker(chunk_tokens=32, overlap_tokens=8, tables=True).chunk("doc", [Page(1, text, "text")])
    )
    covered = bytearray(len(read.text))
    for c in chunks:
        span = read.text[c.char_start : c.char_end]
        assert c.text == span or any(
            c.text == f"{h}\n{span}" for t in read.tables for h in (t.header, t.column_header)
        )
        covered[c.char_start : c.char_end] = b"\x01" * (c.char_end - c.char_start)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(read.text))
