"""PDFs: FinanceBench filings (text layer) and their scanned evidence pages (OCR)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader, PdfWriter

from ingest.loaders import load_document
from ingest.loaders.pdf import needs_ocr
from rag.settings import Settings

from .conftest import normalize_ws, read_all, word_recall

SCANNED = ["3M_2018_10K_p57", "AMCOR_2023Q2_10Q_p14", "AMCOR_2023_10K_p49"]


def scanned_pdf(datasets: Path, name: str) -> Path:
    return datasets / "financebench_scanned_evidence" / "pdfs" / f"{name}.pdf"


def split_name(name: str) -> tuple[str, int]:
    doc, page = name.rsplit("_p", 1)
    return doc, int(page)


@pytest.mark.slow
def test_evidence_is_on_its_page(
    financebench: Path, financebench_evidence: list[dict], settings: Settings
) -> None:
    docs = ("BOEING_2022_10K", "AMCOR_2023_10K")
    items = [
        e for e in financebench_evidence if e["doc"] in docs and e["page0"] < 15 and len(e["text"]) < 200
    ]
    assert len({(e["doc"], e["page0"]) for e in items}) >= 3
    for doc in docs:
        wanted = [e for e in items if e["doc"] == doc]
        path = financebench / "pdfs" / f"{doc}.pdf"
        document = load_document(path, settings)
        pdfium_doc = pdfium.PdfDocument(path)
        try:
            assert document.page_count == len(pdfium_doc)
        finally:
            pdfium_doc.close()
        last = max(e["page0"] for e in wanted) + 1
        pages = list(itertools.islice(document.pages, last))  # lazy: the rest is never read
        assert [p.page_no for p in pages] == list(range(1, last + 1))
        assert {p.source for p in pages} == {"text-layer"}
        texts = [normalize_ws(p.text) for p in pages]
        for evidence in wanted:
            needle = normalize_ws(evidence["text"]).strip(". ")
            first = next(i + 1 for i, text in enumerate(texts) if needle in text)
            assert first == evidence["page0"] + 1, f"{doc}: {needle[:50]!r} on page {first}"


def test_title_from_metadata(financebench: Path, settings: Settings) -> None:
    path = financebench / "pdfs" / "3M_2018_10K.pdf"
    reference = pdfium.PdfDocument(path)
    try:
        expected = reference.get_metadata_dict()["Title"]
    finally:
        reference.close()
    document = load_document(path, settings)
    assert expected and document.title == expected
    document.pages.close()  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("name", SCANNED)
def test_scanned_page_ocr_recall(
    datasets: Path, settings: Settings, name: str, text_layer_page: Callable[[str, int], str]
) -> None:
    document, pages = read_all(scanned_pdf(datasets, name), settings)
    assert document.page_count == 1
    (page,) = pages
    assert (page.page_no, page.source) == (1, "ocr")
    assert page.ocr_confidence is not None and 50 < page.ocr_confidence <= 100
    assert word_recall(text_layer_page(*split_name(name)), page.text) >= 0.9


@pytest.mark.slow
def test_sideways_scan_with_rotate_entry(
    datasets: Path, settings: Settings, tmp_path: Path, text_layer_page: Callable[[str, int], str]
) -> None:
    """A scan stored sideways whose /Rotate makes viewers show it upright, as scanners write them."""
    document = pdfium.PdfDocument(scanned_pdf(datasets, SCANNED[2]))
    try:
        upright = document[0].render(scale=150 / 72, grayscale=True).to_pil().copy()
    finally:
        document.close()
    sideways = tmp_path / "sideways.pdf"
    upright.rotate(90, expand=True).save(sideways, "PDF", resolution=150)
    writer = PdfWriter(clone_from=sideways)
    writer.pages[0].rotate(90)  # clockwise, undoing the counter-clockwise turn above
    path = tmp_path / "rotated.pdf"
    writer.write(path)
    _, pages = read_all(path, settings)
    assert word_recall(text_layer_page(*split_name(SCANNED[2])), pages[0].text) >= 0.9


@pytest.mark.slow
def test_mixed_encrypted_with_empty_password(
    datasets: Path,
    financebench: Path,
    settings: Settings,
    tmp_path: Path,
    text_layer_page: Callable[[str, int], str],
) -> None:
    """Text-layer and scanned pages in one AES-encrypted file that opens without a password."""
    writer = PdfWriter()
    writer.add_page(PdfReader(financebench / "pdfs" / "AMCOR_2022_8K_dated-2022-07-01.pdf").pages[0])
    writer.add_page(PdfReader(scanned_pdf(datasets, SCANNED[1])).pages[0])
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-256")
    path = tmp_path / "mixed.pdf"
    writer.write(path)
    document, pages = read_all(path, settings)
    assert document.page_count == 2
    assert [(p.page_no, p.source) for p in pages] == [(1, "text-layer"), (2, "ocr")]
    gold_first = text_layer_page("AMCOR_2022_8K_dated-2022-07-01", 0)
    assert word_recall(gold_first, pages[0].text) >= 0.97  # pypdf's text as gold; PDFium reads it here
    assert word_recall(text_layer_page(*split_name(SCANNED[1])), pages[1].text) >= 0.9


def test_ocr_disabled_keeps_the_empty_text_layer(
    datasets: Path, make_settings: Callable[..., Settings]
) -> None:
    _, pages = read_all(scanned_pdf(datasets, SCANNED[0]), make_settings(ocr_enabled=False))
    assert [(p.source, p.text, p.ocr_confidence) for p in pages] == [("text-layer", "", None)]


@pytest.mark.slow
def test_window_size_does_not_change_pages(
    financebench: Path, make_settings: Callable[..., Settings]
) -> None:
    path = financebench / "pdfs" / "AMCOR_2022_8K_dated-2022-07-01.pdf"
    _, one = read_all(path, make_settings(pdf_window_pages=1))
    _, three = read_all(path, make_settings(pdf_window_pages=3))
    assert len(one) == PdfReader(path).get_num_pages() > 3
    assert one == three


def test_garbage_text_layer_needs_ocr(settings: Settings) -> None:
    prose = "Revenue grew in every region during the quarter, led by strong demand in Asia."
    assert not needs_ocr(prose, settings)
    assert needs_ocr("Page 7", settings)  # too short to be the page's text
    assert needs_ocr("(cid:3)(cid:17)(cid:42)" * 20, settings)
    assert needs_ocr("\ufffd\ufffd ab \ufffd\ufffd" * 20, settings)
    assert needs_ocr("\x01\x02\x03\ue000\ue001 text" * 20, settings)


def test_pdf_bytes_are_read_once_from_memory(financebench: Path, settings: Settings, tmp_path: Path) -> None:
    """The file may change once loading has started (an upload slot reused): pages come from the original."""
    source = financebench / "pdfs" / "AMCOR_2022_8K_dated-2022-07-01.pdf"
    path = tmp_path / "upload.pdf"
    path.write_bytes(source.read_bytes())
    document = load_document(path, settings)
    path.write_bytes(b"")
    pages = list(document.pages)
    assert len(pages) == document.page_count and pages[0].text


def test_filing_with_a_huge_array_is_read(datasets: Path, settings: Settings) -> None:
    # Microsoft's 2023 Q1 10-Q holds an array of over 100,000 elements (pypdf's default limit)
    path = datasets / "docugami_sec10q" / "docs" / "2023 Q1 MSFT.pdf"
    doc = load_document(path, settings)
    assert doc.page_count == 72
    first = next(iter(doc.pages))
    assert "MICROSOFT" in first.text.upper()
    doc.pages.close()  # type: ignore[attr-defined]
