"""The shipped golden sets are exactly what the build script makes from the public datasets."""

from __future__ import annotations

import csv
import filecmp
import json
import re
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from eval.golden import DEFAULT_GOLDEN_DIR, REPO_ROOT, load_set

SCRIPT = REPO_ROOT / "scripts" / "build_golden.py"


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _build(datasets: Path, out: Path, *extra: str, timeout: int) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--datasets", str(datasets), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _same_files(a: Path, b: Path) -> None:
    assert _tree(a) == _tree(b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, _tree(a), shallow=False)
    assert mismatch == [] and errors == []


def _page_text(pdf_path: Path, index: int) -> str:
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        return str(pdf[index].get_textpage().get_text_range())
    finally:
        pdf.close()


def _words(text: str) -> str:
    return re.sub(r"\W+", "", text.lower())


@pytest.mark.slow
def test_build_reproduces_the_shipped_sets(datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "golden"
    _build(datasets, out, timeout=900)  # the FinanceBench filings alone are 3,628 pages
    # byte for byte what is shipped, page twins included (pypdf writes no dates or random ids)
    _same_files(out, DEFAULT_GOLDEN_DIR)


def test_financebench_has_every_filing_and_one_based_pages(datasets: Path) -> None:
    fb = load_set("financebench", datasets_dir=datasets)
    assert len(fb.records) == 61 and len(fb.documents) == 31
    filings = datasets / "financebench" / "pdfs"
    assert {d.id for d in fb.documents} == {p.name for p in filings.glob("*.pdf")}
    assert all(
        d.path is not None and d.path.parent == filings for d in fb.documents
    )  # referenced, not copied
    pages = {d.id: d.pages or 0 for d in fb.documents}
    assert sum(pages.values()) == fb.stats["pages"] == 3628
    for record in fb.records:
        assert record.answerable and record.answers and record.evidence
        assert all(ev.page is not None and 1 <= ev.page <= pages[ev.doc] for ev in record.evidence)
    # FinanceBench's evidence_page_num is zero-based: 59 there is page 60 of the PDF here
    raw = {}
    with (datasets / "financebench" / "data" / "financebench_open_source.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            raw[row["financebench_id"]] = row
    assert [e["evidence_page_num"] for e in raw["financebench_id_03029"]["evidence"]] == [59]
    record = next(r for r in fb.records if r.id == "financebench_id_03029")
    assert [(e.doc, e.page) for e in record.evidence] == [("3M_2018_10K.pdf", 60)]
    evidence = _words(record.evidence[0].text or "")[:200]
    assert evidence and evidence in _words(_page_text(filings / "3M_2018_10K.pdf", 60 - 1))


def test_scanned_and_text_page_sets_are_twins(datasets: Path) -> None:
    scanned = load_set("financebench-scanned", datasets_dir=datasets)
    pages = load_set("financebench-pages", datasets_dir=datasets)
    fb = {r.id: r for r in load_set("financebench", datasets_dir=datasets).records}
    assert len(scanned.records) == 61 and len(scanned.documents) == 69
    assert [r.id for r in scanned.records] == [r.id for r in pages.records]
    assert scanned.records == pages.records  # same questions, answers and evidence, question by question
    assert [d.id for d in scanned.documents] == [d.id for d in pages.documents]  # one-to-one, same names
    assert {r.id for r in scanned.records} == set(fb)
    for record in scanned.records:
        # <filing>_p<FinanceBench's zero-based page>.pdf, evidence on its only page
        expected = [f"{Path(e.doc).stem}_p{(e.page or 0) - 1}.pdf" for e in fb[record.id].evidence]
        assert [e.doc for e in record.evidence] == expected
        assert all(e.page == 1 for e in record.evidence)
    assert {e.doc for r in scanned.records for e in r.evidence} == {d.id for d in scanned.documents}
    scans = datasets / "financebench_scanned_evidence" / "pdfs"
    assert all(d.path is not None and d.path.parent == scans and d.pages == 1 for d in scanned.documents)
    shipped = DEFAULT_GOLDEN_DIR / "financebench-pages" / "docs"
    assert all(d.path is not None and d.path.parent == shipped and d.pages == 1 for d in pages.documents)
    assert scanned.content_key() != pages.content_key()  # different bytes, so different collections
    # a twin is the filing's page, text layer and all; the scan has no text layer
    twin = next(d for d in pages.documents if d.id == "3M_2018_10K_p59.pdf")
    assert twin.path is not None
    twin_text = _page_text(twin.path, 0)
    assert len(twin_text) > 1000
    assert twin_text == _page_text(datasets / "financebench" / "pdfs" / "3M_2018_10K.pdf", 59)
    assert _page_text(scans / "3M_2018_10K_p59.pdf", 0).strip() == ""
    with pdfium.PdfDocument(str(twin.path)) as pdf:
        assert len(pdf) == 1 and not pdf.get_metadata_dict(skip_empty=True)


def test_docugami_all_has_every_question_and_the_subset_unchanged(datasets: Path) -> None:
    full = load_set("docugami-10q-all", datasets_dir=datasets)
    small = load_set("docugami-10q")
    root = datasets / "docugami_sec10q"
    assert {d.id for d in full.documents} == {p.name for p in (root / "docs").glob("*.pdf")}
    assert len(full.documents) == 20
    assert all(d.path is not None and d.path.parent == root / "docs" and d.pages for d in full.documents)
    with (root / "v1" / "qna_data.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert len(full.records) == sum(1 for _ in csv.DictReader(fh))  # every pattern resolves
    # the five-PDF set is the same derivation over fewer documents: its questions are unchanged here
    by_id = {r.id: r for r in full.records}
    assert all(by_id[r.id] == r for r in small.records)
    paged = sum(1 for r in full.records if any(e.page is not None for e in r.evidence))
    assert 0 < paged < len(full.records)
    assert f"{paged} of {len(full.records)} questions have page evidence" in full.description
    assert (
        "DERIVED" in full.description
        and "DERIVED" in (DEFAULT_GOLDEN_DIR / "docugami-10q-all" / "NOTICE").read_text()
    )
