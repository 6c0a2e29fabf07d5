"""Document profiles from real filings' first pages, and the context header every chunk carries."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.chunking import CONTEXT_TOKENS, Chunker
from ingest.loaders import load_document
from ingest.profile import DocumentProfile, profile_document, read_profile
from rag.settings import Settings, load_settings
from rag.tokens import count_tokens
from rag.types import Chunk, Heading, Page, indexed_text


def profile_of(financebench: Path, doc: str) -> DocumentProfile:
    loaded = load_document(financebench / "pdfs" / f"{doc}.pdf", load_settings(ocr_enabled=False))
    profile, _ = read_profile(loaded.pages, title=loaded.title)
    return profile


@pytest.mark.parametrize(
    ("doc", "filer", "form", "period", "period_end", "fiscal_year"),
    [
        ("3M_2018_10K", "3M COMPANY", "10-K", "fiscal year ended December 31, 2018", "2018-12-31", 2018),
        (
            "AMCOR_2023Q2_10Q",
            "AMCOR PLC",
            "10-Q",
            "quarterly period ended December 31, 2022",
            "2022-12-31",
            None,
        ),
        (
            "BESTBUY_2024Q2_10Q",
            "BEST BUY CO., INC.",
            "10-Q",
            "quarterly period ended July 29, 2023",
            "2023-07-29",
            None,
        ),
        (
            "BESTBUY_2023_10K",
            "BEST BUY CO., INC.",
            "10-K",
            "fiscal year ended January 28, 2023",
            "2023-01-28",
            2023,
        ),
        ("AMCOR_2023Q4_EARNINGS", "Amcor", "earnings release (Exhibit 99.1)", "fiscal 2023", None, 2023),
        (
            "FOOTLOCKER_2022_8K_dated-2022-05-20",
            "Foot Locker, Inc.",
            "8-K",
            "dated May 20, 2022",
            "2022-05-20",
            None,
        ),
        (
            "GENERALMILLS_2022_10K",
            "GENERAL MILLS, INC.",
            "10-K",
            "fiscal year ended May 29, 2022",
            "2022-05-29",
            2022,
        ),
        # the name is set letter-spaced over four lines of the text layer: "MGM" "R" "ESORTS I" "NTERNATIONAL"
        (
            "MGMRESORTS_2018_10K",
            "MGM RESORTS INTERNATIONAL",
            "10-K",
            "fiscal year ended December 31, 2018",
            "2018-12-31",
            2018,
        ),
        # no name on the cover (a logo): the group's name heading the next page
        (
            "COCACOLA_2017_10K",
            "THE COCA-COLA COMPANY",
            "10-K",
            "fiscal year ended December 31, 2017",
            "2017-12-31",
            2017,
        ),
        (
            "MGMRESORTS_2022Q4_EARNINGS",
            "MGM Resorts International",
            "earnings release (Exhibit 99.1)",
            "fourth quarter and full year 2022",
            None,
            2022,
        ),
    ],
)
def test_profiles_of_real_filings(
    financebench: Path,
    doc: str,
    filer: str,
    form: str,
    period: str,
    period_end: str | None,
    fiscal_year: int | None,
) -> None:
    profile = profile_of(financebench, doc)
    assert (profile.filer, profile.form, profile.period) == (filer, form, period)
    assert (profile.period_end, profile.fiscal_year) == (period_end, fiscal_year)
    description = profile.describe()
    assert description.startswith(f"{filer} {form} {period}")
    if fiscal_year and not period.startswith("fiscal 2") and "full year" not in period:
        assert description.endswith(f"(FY{fiscal_year})")
    assert DocumentProfile.from_metadata(profile.to_metadata()) == profile


def test_the_3m_description(financebench: Path) -> None:
    profile = profile_of(financebench, "3M_2018_10K")
    assert profile.describe() == "3M COMPANY 10-K fiscal year ended December 31, 2018 (FY2018)"
    assert profile.title == "10-K - 02/07/2019 - 3M Company"  # a metadata title that says something


@pytest.mark.parametrize(
    ("doc", "metadata_title"),
    [
        ("BESTBUY_2024Q2_10Q", "0000764478-23-000041"),  # an EDGAR accession number
        ("GENERALMILLS_2020_10K", "Microsoft Word - F20_10K_VFinal_07.01.2020"),
        ("COCACOLA_2017_10K", "Document"),
    ],
)
def test_meaningless_metadata_titles_are_replaced(financebench: Path, doc: str, metadata_title: str) -> None:
    loaded = load_document(financebench / "pdfs" / f"{doc}.pdf", load_settings(ocr_enabled=False))
    assert loaded.title == metadata_title
    profile, _ = read_profile(loaded.pages, title=loaded.title)
    assert profile.title == f"{profile.filer} {profile.form}"


def test_documents_that_are_not_filings_get_a_title_only() -> None:
    pages = [Page(1, "Annual hiking report\nWe walked 1,200 km in 2023, fiscal year ended badly.", "text")]
    profile = profile_document(pages)
    assert profile == DocumentProfile(title="Annual hiking report")
    assert profile.describe() == "Annual hiking report"
    assert profile.to_metadata() == {"profile_title": "Annual hiking report"}
    assert profile_document(pages, title="Hikes 2023").describe() == "Hikes 2023"
    headed = [Page(1, "intro words\n\nThe Title", "text", headings=(Heading(13, "The Title"),))]
    assert profile_document(headed).title == "The Title"
    assert profile_document([Page(1, "", "ocr")]) == DocumentProfile()
    assert DocumentProfile().describe() == "" and DocumentProfile.from_metadata({}) == DocumentProfile()


def test_read_profile_reads_the_stream_once() -> None:
    read: list[int] = []

    def pages() -> Iterator[Page]:
        for n in range(1, 6):
            read.append(n)
            yield Page(n, f"Page {n} of a plain document.", "text")

    profile, stream = read_profile(pages())
    assert read == [1, 2] and profile.title == "Page 1 of a plain document."
    assert [p.page_no for p in stream] == [1, 2, 3, 4, 5] and read == [1, 2, 3, 4, 5]


# --- context headers --------------------------------------------------------------------------


def chunks_with_context(pages: list[Page], profile: DocumentProfile | None, **kwargs: object) -> list[Chunk]:
    options: dict[str, object] = {"chunk_tokens": 200, "overlap_tokens": 40, "tables": True}
    options |= {"context_headers": True, **kwargs}
    return list(Chunker(**options).chunk("doc", pages, profile))  # type: ignore[arg-type]


def test_a_filing_chunk_is_indexed_with_filer_form_period_and_page(financebench: Path) -> None:
    loaded = load_document(loaded_path(financebench), load_settings(ocr_enabled=False))
    profile, stream = read_profile(loaded.pages, title=loaded.title)
    pages = list(stream)
    chunks = chunks_with_context(pages, profile)
    assert len(chunks) >= 4
    for c in chunks:
        pages_said = (
            f"page {c.page_start}" if c.page_start == c.page_end else f"pages {c.page_start}-{c.page_end}"
        )
        assert c.context.startswith("Foot Locker, Inc. 8-K dated May 20, 2022 | ")
        assert c.context.endswith(pages_said)
        assert count_tokens(c.context) <= CONTEXT_TOKENS
        assert c.indexed_text == f"{c.context}\n{c.text}" == indexed_text(c.text, c.context)
        assert not c.text.startswith("Foot Locker, Inc. 8-K")
    without = chunks_with_context(pages, profile, context_headers=False)
    assert [c.text for c in without] == [c.text for c in chunks]  # the header never changes the text
    assert all(c.context == "" and c.indexed_text == c.text for c in without)


def loaded_path(financebench: Path) -> Path:
    return financebench / "pdfs" / "FOOTLOCKER_2022_8K_dated-2022-05-20.pdf"


def test_the_header_names_the_table_a_chunk_comes_from(financebench: Path) -> None:
    settings = load_settings(ocr_enabled=False)
    loaded = load_document(financebench / "pdfs" / "3M_2018_10K.pdf", settings)
    profile, pages = read_profile(loaded.pages, title=loaded.title)
    cash_flows = [p for p in pages if p.page_no == 60]
    chunks = chunks_with_context(cash_flows, profile)
    (ppe,) = [c for c in chunks if "(PP&E): 2018: (1,577)" in c.text]
    assert ppe.context == (
        "3M COMPANY 10-K fiscal year ended December 31, 2018 (FY2018) | "
        "Consolidated Statement of Cash Flows Years ended December 31 | page 60"
    )


def test_markdown_gets_a_title_only_header_with_its_heading_path(tmp_path: Path) -> None:
    path = tmp_path / "budget.md"
    path.write_text(
        "# Household budget\n\n## Food\n\nWe spent 120 euros in 2023 on food.\n\n## Rent\n\nRent was 900 euros.\n"
    )
    loaded = load_document(path, load_settings())
    profile, pages = read_profile(loaded.pages, title=loaded.title)
    assert profile == DocumentProfile(title="Household budget")
    chunks = chunks_with_context(list(pages), profile, chunk_tokens=16, overlap_tokens=0)
    contexts = {c.text: c.context for c in chunks}
    assert contexts["We spent 120 euros in 2023 on food."] == "Household budget | Food | page 1"
    assert contexts["Rent\n\nRent was 900 euros."] == "Household budget | Rent | page 1"
    assert contexts["Household budget\n\nFood"] == "Household budget | page 1"  # the title is said once


def test_a_long_description_is_clipped_to_the_budget() -> None:
    profile = DocumentProfile(title=" ".join(f"word{i}" for i in range(60)))
    headed = Page(3, "Section " * 30 + "\n\nBody text here.", "text", headings=(Heading(0, "Section " * 30),))
    chunks = chunks_with_context([headed], profile)
    assert all(count_tokens(c.context) <= CONTEXT_TOKENS and c.context.endswith("page 3") for c in chunks)


def test_the_header_fits_within_the_embedders_limit(financebench: Path) -> None:
    from tokenizers import Tokenizer

    from rag.models import bundled_model_path

    bundle = bundled_model_path("sentence-transformers/all-MiniLM-L6-v2")
    assert bundle is not None
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def wordpieces(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    loaded = load_document(financebench / "pdfs" / "AMCOR_2023Q2_10Q.pdf", load_settings(ocr_enabled=False))
    profile, pages = read_profile(loaded.pages, title=loaded.title)
    chunks = chunks_with_context(
        list(pages), profile, model_token_counter=wordpieces, model_max_tokens=160, embed_context=True
    )
    assert max(wordpieces(c.indexed_text) for c in chunks) <= 160
    assert max(wordpieces(c.indexed_text) for c in chunks) > 150  # the limit binds, header included


# --- the pipeline and the index -------------------------------------------------------------


@pytest.mark.slow
def test_ingested_chunks_are_indexed_with_their_header_and_shown_without(
    settings: Settings, financebench: Path, tmp_path: Path
) -> None:
    from rag.index.store import open_store
    from service.runtime import Runtime

    note = tmp_path / "note.txt"
    note.write_text("Revenue grew by nine percent while costs fell.\n\nThe board approved the plan.")
    with Runtime(settings) as rt:
        filing = rt.ingestion.ingest_file(loaded_path(financebench))
        memo = rt.ingestion.ingest_file(note, metadata={"title": "Zanzibar memo"})
        meta = rt.index.catalog.get(filing.document.id).metadata  # type: ignore[union-attr]
        assert DocumentProfile.from_metadata(meta).describe() == "Foot Locker, Inc. 8-K dated May 20, 2022"
        assert meta["profile_form"] == "8-K" and meta["title"].startswith("Form 8-K for Foot Locker")

        ids = [f"{filing.document.id}:{i:06d}" for i in range(filing.chunks)]
        stored = rt.index.get(ids)
        assert len(stored) == filing.chunks
        for s in stored:
            assert s.chunk.context.startswith("Foot Locker, Inc. 8-K dated May 20, 2022 | page")
            assert "8-K dated" not in s.chunk.text

        # the title exists only in the memo's context: the keyword side finds it there...
        hits = rt.index.lexical("Zanzibar", 5, "default")
        assert {h.doc_id for h in hits} == {memo.document.id}
        # ...and search shows the clean text
        found = rt.query.search("Zanzibar memo revenue", k=3)
        assert found.results and all("Zanzibar" not in r.text for r in found.results)

    shutil.rmtree(settings.lexical_dir)  # rebuilt from Chroma at start-up, with the same indexed text
    store = open_store(settings)
    try:
        assert {h.doc_id for h in store.lexical("Zanzibar", 5, "default")} == {memo.document.id}
    finally:
        store.close()
