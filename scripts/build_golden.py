#!/usr/bin/env python3
"""Build the shipped golden sets in ``data/golden`` from the public datasets, reproducibly.

    python scripts/build_golden.py --datasets ../shared/datasets [--out data/golden] [--seed 0]
                                   [--sets NAME,...]

Every choice is seeded and every file is written in a stable order, so running it twice gives
byte-identical sets. Chunk estimates use the default embedder's own tokenizer (offline) with the
default chunking (200 tokens, 40 overlap); sentence-aware chunking lands a little above them.

``--sets`` rebuilds only the named sets; the README table is always made from every manifest in
``--out``. Large PDFs that the shared datasets hold (FinanceBench, all of Docugami) are referenced
from there (``datasets:...`` in the manifest, with their sha256), not copied.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import io
import json
import math
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from eval.golden import (  # noqa: E402
    EvidenceRef,
    GoldenRecord,
    GoldenSet,
    SourceDocument,
    clapnq_asked_over,
    load_clapnq,
    load_financebench,
    load_squad,
    write_set,
)

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DOCUGAMI_DOCS = (
    "2022 Q3 AAPL.pdf",
    "2023 Q1 AAPL.pdf",
    "2023 Q2 AAPL.pdf",
    "2023 Q3 AAPL.pdf",
    "2023 Q3 NVDA.pdf",
)


# --------------------------------------------------------------------------- sizing


class Sizer:
    """Token counts in the embedder's tokens, and the chunks a 200/40 chunker would make."""

    def __init__(self, chunk_tokens: int, overlap: int) -> None:
        self.chunk_tokens, self.overlap = chunk_tokens, overlap
        self.counter, self.tokenizer_name = self._counter()

    @staticmethod
    def _counter() -> tuple[Callable[[str], int], str]:
        try:
            from transformers import AutoTokenizer

            from rag.models import resolve_model

            tokenizer = AutoTokenizer.from_pretrained(resolve_model(EMBEDDING_MODEL)[0])
            tokenizer.model_max_length = 10**9  # counting only; silences the >512 warning
            return (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])), EMBEDDING_MODEL
        except Exception as exc:  # no bundled model: fall back to tiktoken, and say so
            from rag.tokens import get_encoding

            print(f"note: embedder tokenizer unavailable ({exc.__class__.__name__}); using cl100k_base")
            enc = get_encoding("cl100k_base")
            return (lambda text: len(enc.encode(text, disallowed_special=()))), "cl100k_base"

    def chunks(self, tokens: int) -> int:
        if tokens <= self.chunk_tokens:
            return 1
        return 1 + math.ceil((tokens - self.chunk_tokens) / (self.chunk_tokens - self.overlap))

    def doc_tokens(self, doc: SourceDocument, pages: Sequence[str] | None = None) -> int:
        if pages is not None:
            return sum(self.counter(p) for p in pages)
        return self.counter(doc.read_bytes().decode("utf-8"))

    def stats(self, golden: GoldenSet, page_texts: dict[str, list[str]] | None = None) -> dict[str, Any]:
        tokens = [self.doc_tokens(d, (page_texts or {}).get(d.id)) for d in golden.documents]
        paged = sum(1 for r in golden.records for e in r.evidence if e.page is not None)
        return {
            "questions": len(golden.records),
            "answerable": golden.answerable_count,
            "unanswerable": len(golden.records) - golden.answerable_count,
            "documents": len(golden.documents),
            "bytes": sum(len(d.read_bytes()) for d in golden.documents),
            "pages": sum(d.pages or 0 for d in golden.documents) or None,
            "evidence_with_page": paged,
            "estimated_tokens": sum(tokens),
            "estimated_chunks": sum(self.chunks(t) for t in tokens),
            "chunking": f"{self.chunk_tokens} tokens, {self.overlap} overlap ({self.tokenizer_name} tokens)",
        }


# --------------------------------------------------------------------------- sets


def _squad_paragraphs(raw_path: Path) -> dict[str, list[tuple[str, bool]]]:
    """doc id -> [(question id, answerable)] in file order (the loader names docs the same way)."""
    from eval.golden import slug

    payload = json.loads(raw_path.read_text(encoding="utf-8"))
    out: dict[str, list[tuple[str, bool]]] = {}
    for article in payload["data"]:
        for idx, paragraph in enumerate(article["paragraphs"]):
            doc = f"{slug(article.get('title', 'untitled'))}-p{idx:03d}.txt"
            out[doc] = [(qa["id"], not qa.get("is_impossible", False)) for qa in paragraph["qas"]]
    return out


def build_squad(
    datasets: Path, seed: int, n_paragraphs: int, ci_paragraphs: int, ci_distractors: int
) -> tuple[GoldenSet, GoldenSet]:
    """One answerable and one unanswerable question from each of ``n_paragraphs`` paragraphs."""
    raw = datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json"
    full = load_squad(raw, name="squad2")
    by_doc = _squad_paragraphs(raw)
    rng = random.Random(seed)
    eligible = sorted(d for d, qs in by_doc.items() if any(a for _, a in qs) and any(not a for _, a in qs))
    chosen = rng.sample(eligible, n_paragraphs)
    picks: list[str] = []
    per_doc: dict[str, list[str]] = {}
    for doc in chosen:
        answerable = sorted(q for q, a in by_doc[doc] if a)
        unanswerable = sorted(q for q, a in by_doc[doc] if not a)
        per_doc[doc] = [rng.choice(answerable), rng.choice(unanswerable)]
        picks += per_doc[doc]
    records = {r.id: r for r in full.records}
    docs = {d.id: d for d in full.documents}

    def make(name: str, doc_ids: list[str], qids: list[str], description: str) -> GoldenSet:
        return GoldenSet(
            name=name,
            kind="qa",
            records=[records[q] for q in qids],
            documents=[docs[d] for d in sorted(doc_ids)],
            description=description,
            source="SQuAD 2.0 dev (CS224N half: first 16 articles), Rajpurkar et al. 2018",
            license="CC BY-SA 4.0",
        )

    main = make(
        "squad2",
        chosen,
        picks,
        f"{len(picks)} SQuAD 2.0 questions, half unanswerable: one answerable and one unanswerable "
        "per paragraph; each paragraph is a text document",
    )
    ci_docs = chosen[: ci_paragraphs + ci_distractors]
    ci_q = [q for d in chosen[:ci_paragraphs] for q in per_doc[d]]
    ci = make(
        "squad2-ci",
        ci_docs,
        ci_q,
        f"CI regression subset of squad2: {len(ci_q)} questions over {len(ci_docs)} paragraphs "
        f"({ci_distractors} of them distractors with no question)",
    )
    return main, ci


def build_clapnq(datasets: Path, seed: int, per_class: int) -> GoldenSet:
    full = load_clapnq(datasets / "clapnq_dev")
    rng = random.Random(seed)
    answerable = sorted(r.id for r in full.records if r.answerable)
    unanswerable = sorted(r.id for r in full.records if not r.answerable)
    keep = set(rng.sample(answerable, per_class)) | set(rng.sample(unanswerable, per_class))
    records = [r for r in full.records if r.id in keep]
    # the passage each question was asked over, answerable or not (unanswerable ones are near misses)
    asked_over = clapnq_asked_over(datasets / "clapnq_dev")
    wanted = {asked_over[r.id] for r in records}
    return GoldenSet(
        name="clapnq",
        kind="qa",
        records=records,
        documents=sorted((d for d in full.documents if d.id in wanted), key=lambda d: d.id),
        description=f"{len(records)} ClapNQ dev questions ({per_class} answerable, {per_class} unanswerable) "
        "over the Wikipedia passage each was asked about; answers are long-form",
        source="ClapNQ dev (IBM), Rosenthal et al. 2024",
        license="Apache-2.0",
    )


def build_covidqa(datasets: Path, seed: int, sizer: Sizer, n_questions: int, chunk_budget: int) -> GoldenSet:
    """The papers densest in questions that fit in ``chunk_budget`` chunks; questions spread evenly."""
    raw = json.loads(
        (datasets / "covidqa_deepset_200423" / "200423_covidQA.json").read_text(encoding="utf-8")
    )
    papers = []
    for article in raw["data"]:
        paragraph = article["paragraphs"][0]
        doc_id = f"covidqa-{paragraph['document_id']}.txt"
        chunks = sizer.chunks(sizer.counter(paragraph["context"]))
        papers.append((doc_id, paragraph, chunks))
    papers.sort(key=lambda p: (-len(p[1]["qas"]) / p[2], p[0]))
    chosen, total_chunks = [], 0
    for doc_id, paragraph, chunks in papers:
        if total_chunks + chunks <= chunk_budget:
            chosen.append((doc_id, paragraph))
            total_chunks += chunks
    rng = random.Random(seed)
    pools = []
    for doc_id, paragraph in sorted(chosen, key=lambda c: c[0]):
        records = []
        for qa in sorted(paragraph["qas"], key=lambda q: str(q["id"])):
            answers = list(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
            records.append(
                GoldenRecord(
                    id=f"covidqa-{qa['id']}",
                    question=qa["question"].strip(),
                    answers=answers,
                    evidence=[EvidenceRef(doc=doc_id, text=answers[0])],
                    answerable=True,
                )
            )
        rng.shuffle(records)
        pools.append(records)
    # round-robin over the papers, so every paper is asked about and none dominates
    picked: list[GoldenRecord] = []
    while len(picked) < n_questions and any(pools):
        for pool in pools:
            if pool and len(picked) < n_questions:
                picked.append(pool.pop())
    kept = sorted(picked, key=lambda r: (r.evidence[0].doc, r.id))
    return GoldenSet(
        name="covidqa",
        kind="qa",
        records=kept,
        documents=sorted(
            (SourceDocument(id=d, text=p["context"]) for d, p in chosen),
            key=lambda d: d.id,
        ),
        description=f"{len(kept)} COVID-QA questions over {len(chosen)} of its 98 full-text papers "
        f"(the papers richest in questions per chunk, within a {chunk_budget}-chunk budget)",
        source="COVID-QA (deepset, 2020-04-23 release), Möller et al. 2020",
        license="Apache-2.0",
    )


_FIGURE = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|(?<![\d.,])\d+\.\d+(?=\s?%)")
_PERCENT_AFTER = re.compile(r"\s?%")
_SOURCE_NOTE = re.compile(
    r"\(?\s*SOURCE(?:\(S\))?:[^\n]*|\(\s*(?:from\s+)?\"?\d{4} Q\d [A-Z]+\.pdf\"?\s*\)", re.IGNORECASE
)


def _clean_answer(text: str) -> str:
    if "â€" in text:
        with contextlib.suppress(UnicodeError):
            text = text.encode("cp1252").decode("utf-8")
    text = _SOURCE_NOTE.sub("", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _page_evidence(doc: str, answer: str, pages: list[str]) -> list[EvidenceRef]:
    """Pages that state the answer's figures: the fewest pages covering every figure found in the
    document (most figures first, then the earliest page). No figure found: the document alone.
    """
    patterns = {}
    for m in _FIGURE.finditer(answer):
        figure = m.group(0)
        # a percentage must be a percentage on the page too: bare decimals recur by chance
        tail = r"\s?%" if _PERCENT_AFTER.match(answer, m.end()) else r"(?!\d)"
        patterns[figure] = re.compile(rf"(?<![\d.,]){re.escape(figure)}{tail}")
    on_page = {no: {f for f, pat in patterns.items() if pat.search(text)} for no, text in enumerate(pages, 1)}
    uncovered = set().union(*on_page.values()) if on_page else set()
    evidence = []
    while uncovered:
        page = min(on_page, key=lambda p: (-len(on_page[p] & uncovered), p))
        found = on_page[page] & uncovered
        evidence.append(EvidenceRef(doc=doc, page=page, text="; ".join(sorted(found))))
        uncovered -= found
    return sorted(evidence, key=lambda e: e.page or 0) or [EvidenceRef(doc=doc)]


def _pdf_page_texts(path: Path) -> list[str]:
    """The text layer of every page, as the default PDF reader (pdfium) extracts it."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    finally:
        pdf.close()


def _docugami_records(
    root: Path, docs: Sequence[str], page_texts: dict[str, list[str]]
) -> list[GoldenRecord]:
    """The reviewed questions whose source-document pattern resolves to documents among ``docs``."""
    all_docs = sorted(p.name for p in (root / "docs").glob("*.pdf"))
    with (root / "v1" / "qna_data.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    records = []
    for idx, row in enumerate(rows):
        matched = [d for d in all_docs if fnmatch.fnmatch(d, row["Source Docs"].strip())]
        if not matched or not set(matched) <= set(docs):
            continue
        answer = _clean_answer(row["Answer"])
        evidence = [ev for d in matched for ev in _page_evidence(d, answer, page_texts[d])]
        records.append(
            GoldenRecord(
                id=f"docugami-{idx:03d}",
                question=row["Question"].strip(),
                answers=[answer],
                evidence=evidence,
                answerable=True,
            )
        )
    return records


def build_docugami(datasets: Path, docs: Sequence[str]) -> tuple[GoldenSet, dict[str, list[str]]]:
    root = datasets / "docugami_sec10q"
    page_texts = {name: _pdf_page_texts(root / "docs" / name) for name in docs}
    records = _docugami_records(root, docs, page_texts)
    documents = [
        SourceDocument(id=name, path=root / "docs" / name, pages=len(page_texts[name]))
        for name in sorted(docs)
    ]
    golden = GoldenSet(
        name="docugami-10q",
        kind="qa",
        records=records,
        documents=documents,
        description=f"{len(records)} reviewed Docugami SEC 10-Q questions over {len(docs)} real 10-Q PDFs "
        "(Apple 2022 Q3 to 2023 Q3, NVIDIA 2023 Q3); page evidence derived from the answers' figures",
        source="Docugami KG-RAG datasets, SEC 10-Q v1",
        license="MIT (dataset); the filings are public SEC documents",
    )
    return golden, page_texts


def build_docugami_all(datasets: Path) -> tuple[GoldenSet, dict[str, list[str]], dict[str, str]]:
    """Every reviewed question over all 20 10-Q PDFs, one collection; the PDFs stay in the datasets."""
    root = datasets / "docugami_sec10q"
    docs = sorted(p.name for p in (root / "docs").glob("*.pdf"))
    page_texts = {name: _pdf_page_texts(root / "docs" / name) for name in docs}
    records = _docugami_records(root, docs, page_texts)
    with (root / "v1" / "qna_data.csv").open(encoding="utf-8-sig", newline="") as fh:
        total = sum(1 for _ in csv.DictReader(fh))
    paged = sum(1 for r in records if any(e.page is not None for e in r.evidence))
    documents = [SourceDocument(id=n, path=root / "docs" / n, pages=len(page_texts[n])) for n in docs]
    golden = GoldenSet(
        name="docugami-10q-all",
        kind="qa",
        records=records,
        documents=documents,
        description=f"{len(records)} of the {total} reviewed Docugami SEC 10-Q questions (those whose "
        f"source-document pattern names PDFs of the dataset) over all {len(docs)} of its 10-Q PDFs "
        "(AAPL, AMZN, INTC, MSFT, NVDA; 2022 Q3 to 2023 Q3) in one collection. The dataset names source "
        "documents only: page evidence is DERIVED from the reviewed answers' figures (the fewest pages "
        "of each source PDF that state every figure such as 82,959 or 12.5%, most figures first, earliest "
        f"page on ties); {paged} of {len(records)} questions have page evidence, the others "
        "document-level evidence only",
        source="Docugami KG-RAG datasets, SEC 10-Q v1",
        license="MIT (dataset); the filings are public SEC documents",
    )
    external = {n: f"datasets:docugami_sec10q/docs/{n}" for n in docs}
    return golden, page_texts, external


FINANCEBENCH_SOURCE = "FinanceBench open-source sample (Patronus AI), Islam et al. 2023"
FINANCEBENCH_LICENSE = "CC BY-NC 4.0 (questions); filings are public"


def _financebench_questions(datasets: Path) -> GoldenSet:
    """The FinanceBench records as ``load_financebench`` reads them: 1-based pages, answers as given."""
    root = datasets / "financebench"
    return load_financebench(root / "data" / "financebench_open_source.jsonl", root / "pdfs")


def build_financebench(datasets: Path) -> tuple[GoldenSet, dict[str, list[str]], dict[str, str]]:
    """All questions of the shared copy over all its filings, one collection, 1-based page evidence."""
    root = datasets / "financebench"
    asked = _financebench_questions(datasets)
    names = sorted(p.name for p in (root / "pdfs").glob("*.pdf"))
    page_texts = {n: _pdf_page_texts(root / "pdfs" / n) for n in names}
    for record in asked.records:
        for ev in record.evidence:
            if ev.page is None or ev.page > len(page_texts[ev.doc]):
                raise SystemExit(f"{record.id}: evidence page {ev.page} is not a page of {ev.doc}")
    documents = [SourceDocument(id=n, path=root / "pdfs" / n, pages=len(page_texts[n])) for n in names]
    pages = sum(len(t) for t in page_texts.values())
    golden = GoldenSet(
        name="financebench",
        kind="qa",
        records=asked.records,
        documents=documents,
        description=f"All {len(asked.records)} FinanceBench questions of the shared copy over all {len(names)} "
        f"filings (10-K, 10-Q, 8-K, earnings releases; {pages} pages) in one collection; evidence is the "
        "annotators' page (FinanceBench's zero-based evidence_page_num + 1) with their evidence text",
        source=FINANCEBENCH_SOURCE,
        license=FINANCEBENCH_LICENSE,
    )
    external = {n: f"datasets:financebench/pdfs/{n}" for n in names}
    return golden, page_texts, external


_SCANNED_PAGE = re.compile(r"^(?P<doc>.+)_p(?P<index>\d+)\.pdf$")


def _scanned_page(name: str) -> tuple[str, int]:
    """``3M_2018_10K_p59.pdf`` -> (``3M_2018_10K.pdf``, 59): the filing and its ZERO-based page index."""
    m = _SCANNED_PAGE.match(name)
    if not m:
        raise SystemExit(f"{name} is not named <filing>_p<zero-based page>.pdf")
    return f"{m['doc']}.pdf", int(m["index"])


def _filing_page_texts(datasets: Path, names: Sequence[str]) -> dict[str, str]:
    """Page name (``<filing>_p<index>.pdf``) -> that page's text layer in the FinanceBench filing."""
    import pypdfium2 as pdfium

    wanted: dict[str, list[tuple[str, int]]] = {}
    for name in names:
        filing, index = _scanned_page(name)
        wanted.setdefault(filing, []).append((name, index))
    out = {}
    for filing, pages in sorted(wanted.items()):
        pdf = pdfium.PdfDocument(str(datasets / "financebench" / "pdfs" / filing))
        try:
            for name, index in pages:
                if index >= len(pdf):
                    raise SystemExit(f"{name}: {filing} has only {len(pdf)} pages")
                out[name] = pdf[index].get_textpage().get_text_range()
        finally:
            pdf.close()
    return out


def build_financebench_scanned(datasets: Path) -> tuple[GoldenSet, dict[str, list[str]], dict[str, str]]:
    """The questions over their scanned evidence pages (image-only single-page PDFs), one collection."""
    import pypdfium2 as pdfium

    root = datasets / "financebench_scanned_evidence"
    by_id = {r.id: r for r in _financebench_questions(datasets).records}
    records = []
    with (root / "manifest.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    for row in rows:
        source = by_id[row["financebench_id"]]
        scanned = list(row["scanned_pages"])
        if len(scanned) != len(source.evidence):
            raise SystemExit(f"{source.id}: {len(scanned)} scanned pages for {len(source.evidence)} evidence")
        evidence = []
        for name, ev in zip(scanned, source.evidence, strict=True):
            if _scanned_page(name) != (ev.doc, (ev.page or 0) - 1):
                raise SystemExit(f"{source.id}: scanned page {name} is not evidence {ev.doc} page {ev.page}")
            evidence.append(EvidenceRef(doc=name, page=1, text=ev.text))
        records.append(
            GoldenRecord(
                id=source.id,
                question=str(row["question"]),
                answers=[str(row["answer"])],
                evidence=evidence,
                answerable=True,
            )
        )
    names = sorted(p.name for p in (root / "pdfs").glob("*.pdf"))
    for name in names:
        pdf = pdfium.PdfDocument(str(root / "pdfs" / name))
        try:
            if len(pdf) != 1:
                raise SystemExit(f"{name} has {len(pdf)} pages, expected 1")
        finally:
            pdf.close()
    # sizing only: the scans have no text layer, so chunks are estimated on the same pages' text layer
    page_texts = {name: [text] for name, text in _filing_page_texts(datasets, names).items()}
    golden = GoldenSet(
        name="financebench-scanned",
        kind="qa",
        records=records,
        documents=[SourceDocument(id=n, path=root / "pdfs" / n, pages=1) for n in names],
        description=f"The {len(records)} FinanceBench questions over their {len(names)} gold evidence pages, "
        "scanned (image-only single-page PDFs, 150 dpi, slight rotation and blur: OCR input) in one "
        "collection; a page is named <filing>_p<FinanceBench's zero-based page>.pdf and evidence is its "
        "page 1. Twin of financebench-pages (same questions, same file names, text layer instead of scan)",
        source=FINANCEBENCH_SOURCE + "; scanned evidence pages",
        license=FINANCEBENCH_LICENSE,
    )
    external = {n: f"datasets:financebench_scanned_evidence/pdfs/{n}" for n in names}
    return golden, page_texts, external


def extract_page(reader: Any, index: int) -> bytes:
    """One page of a PDF as a single-page PDF, byte-for-byte reproducible (no /Info, no /ID)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_page(reader.pages[index])
    writer.metadata = None  # no /Info: no /Producer, no dates (and pypdf writes no /ID for a new file)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def build_financebench_pages(
    datasets: Path, scanned: GoldenSet, workdir: Path
) -> tuple[GoldenSet, dict[str, list[str]]]:
    """The text-layer twins of the scanned pages: each cut from its filing into ``workdir``."""
    from pypdf import PdfReader

    pdfs = datasets / "financebench" / "pdfs"
    readers: dict[str, Any] = {}
    originals = _filing_page_texts(datasets, [d.id for d in scanned.documents])
    documents, page_texts = [], {}
    for doc in scanned.documents:
        filing, index = _scanned_page(doc.id)
        if filing not in readers:
            readers[filing] = PdfReader(pdfs / filing)
        data = extract_page(readers[filing], index)
        path = workdir / doc.id
        path.write_bytes(data)
        text = _pdf_page_texts(path)
        if text != [originals[doc.id]]:
            raise SystemExit(f"{doc.id}: the cut page's text differs from page {index + 1} of {filing}")
        documents.append(SourceDocument(id=doc.id, path=path, pages=1))
        page_texts[doc.id] = text
    golden = GoldenSet(
        name="financebench-pages",
        kind="qa",
        records=[r.model_copy(deep=True) for r in scanned.records],
        documents=documents,
        description=f"The {len(scanned.records)} FinanceBench questions over the text-layer twins of the "
        f"{len(documents)} scanned pages of financebench-scanned: each page cut from its original filing "
        "into a single-page PDF (pypdf, no metadata), same file names <filing>_p<FinanceBench's "
        "zero-based page>.pdf, same questions and evidence (page 1), in one collection",
        source=FINANCEBENCH_SOURCE + "; evidence pages cut from the filings",
        license=FINANCEBENCH_LICENSE,
    )
    return golden, page_texts


# --------------------------------------------------------------------------- notices


NOTICES = {
    "squad2": (
        "Questions and paragraphs from the SQuAD 2.0 development set (Rajpurkar, Jia and Liang, 2018,\n"
        "https://rajpurkar.github.io/SQuAD-explorer/), as split by Stanford CS224N (first 16 articles).\n"
        "Licensed under CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/); this subset is\n"
        "shared under the same licence. Changes: a seeded selection of paragraphs, each written as a\n"
        "text file; one answerable and one unanswerable question kept per paragraph.\n"
    ),
    "clapnq": (
        "Questions, passages and answers from ClapNQ dev (IBM, https://github.com/primeqa/clapnq),\n"
        "licensed under Apache-2.0 (see LICENSE beside this file). Passages are from Wikipedia.\n"
        "Changes: a seeded selection of questions; each passage written as a text file (title, blank\n"
        "line, text).\n"
    ),
    "covidqa": (
        "Questions and papers from COVID-QA (deepset, 2020-04-23 release,\n"
        "https://github.com/deepset-ai/COVID-QA), licensed under Apache-2.0 (see LICENSE beside this\n"
        "file). Changes: a subset of the papers (those richest in questions per chunk) written as text\n"
        "files, and a seeded selection of their questions.\n"
    ),
    "docugami-10q": (
        "Questions and reviewed answers from the Docugami KG-RAG datasets, SEC 10-Q v1\n"
        "(https://github.com/docugami/KG-RAG-datasets), licensed under MIT (see LICENSE beside this\n"
        "file). The PDFs are public SEC filings by Apple Inc. and NVIDIA Corporation.\n"
        "Changes: the questions whose source documents are among the five PDFs kept; answers without\n"
        "their 'SOURCE(S)' notes and with mojibake repaired. The dataset names source documents only:\n"
        "page evidence here is DERIVED by scripts/build_golden.py: the fewest pages of each source PDF\n"
        "that state every figure (e.g. 82,959 or 12.5%) of the reviewed answer, most figures first and\n"
        "the earliest page on ties; `text` lists the figures found. Answers without such figures keep\n"
        "document-level evidence only (page null).\n"
    ),
    "docugami-10q-all": (
        "Questions and reviewed answers from the Docugami KG-RAG datasets, SEC 10-Q v1\n"
        "(https://github.com/docugami/KG-RAG-datasets), licensed under MIT (see LICENSE beside this\n"
        "file). The PDFs are public SEC filings by Apple, Amazon, Intel, Microsoft and NVIDIA; they are\n"
        "not copied here: the manifest references them in the shared datasets folder\n"
        "(datasets:docugami_sec10q/docs/..., checked by sha256).\n"
        "Changes: every reviewed question whose source-document pattern names PDFs of the dataset;\n"
        "answers without their 'SOURCE(S)' notes and with mojibake repaired. The dataset names source\n"
        "documents only: page evidence here is DERIVED by scripts/build_golden.py exactly as for\n"
        "docugami-10q: the fewest pages of each source PDF that state every figure (e.g. 82,959 or\n"
        "12.5%) of the reviewed answer, most figures first and the earliest page on ties; `text` lists\n"
        "the figures found. Answers without such figures keep document-level evidence only (page null).\n"
        "A figure can also be found on a page that merely repeats it (a prior-period column, a summary\n"
        "table), so derived pages are a good guide, not annotations.\n"
    ),
    "financebench": (
        "Questions, answers and evidence from the FinanceBench open-source sample (Patronus AI;\n"
        "Islam et al. 2023, https://github.com/patronus-ai/financebench), as held in the shared\n"
        "datasets folder (61 questions, half of the companies). Questions: CC BY-NC 4.0\n"
        "(https://creativecommons.org/licenses/by-nc/4.0/); the filings are public company documents.\n"
        "The PDFs are not copied here: the manifest references them in the shared datasets folder\n"
        "(datasets:financebench/pdfs/..., checked by sha256).\n"
        "Changes: none to questions or answers. Evidence pages are 1-based here (FinanceBench's\n"
        "evidence_page_num is zero-based: 59 there is page 60 here); evidence text as annotated.\n"
    ),
    "financebench-scanned": (
        "Questions and answers from the FinanceBench open-source sample (Patronus AI; Islam et al.\n"
        "2023, https://github.com/patronus-ai/financebench), CC BY-NC 4.0\n"
        "(https://creativecommons.org/licenses/by-nc/4.0/), over scans of their gold evidence pages\n"
        "(financebench_scanned_evidence in the shared datasets folder: image-only single-page PDFs of\n"
        "pages of public filings). The scans are not copied here: the manifest references them there.\n"
        "A page is named <filing>_p<N>.pdf where N is FinanceBench's ZERO-based page number (p59 is\n"
        "page 60 of the filing); each scan is one page, so evidence is page 1 of the named file, with\n"
        "FinanceBench's evidence text. The est. chunks figure counts the same pages' text layer (the\n"
        "scans have none).\n"
    ),
    "financebench-pages": (
        "Questions and answers from the FinanceBench open-source sample (Patronus AI; Islam et al.\n"
        "2023, https://github.com/patronus-ai/financebench), CC BY-NC 4.0\n"
        "(https://creativecommons.org/licenses/by-nc/4.0/). docs/ holds single pages of public company\n"
        "filings: the gold evidence pages, cut unchanged from the FinanceBench PDFs by\n"
        "scripts/build_golden.py (pypdf; no document information, so the bytes are reproducible).\n"
        "They are the text-layer twins of financebench-scanned: same questions, same evidence, same\n"
        "file names <filing>_p<N>.pdf, where N is FinanceBench's ZERO-based page number (p59 is page\n"
        "60 of the filing); evidence is page 1 of the named file.\n"
    ),
}
LICENSE_FILES = {"clapnq": "clapnq_dev/LICENSE", "covidqa": "covidqa_deepset_200423/LICENSE"}
LICENSE_FILES["docugami-10q"] = "docugami_sec10q/LICENSE"
LICENSE_FILES["docugami-10q-all"] = "docugami_sec10q/LICENSE"


def write_notices(out: Path, name: str, datasets: Path, build_cmd: str) -> None:
    key = "squad2" if name.startswith("squad2") else name
    (out / "NOTICE").write_text(NOTICES[key] + f"\nBuilt by: {build_cmd}\n", encoding="utf-8")
    if key in LICENSE_FILES:
        shutil.copyfile(datasets / LICENSE_FILES[key], out / "LICENSE")


def write_readme(out_root: Path) -> None:
    """The table of every set in ``out_root``, from the stats in their manifests."""
    summaries = {
        p.parent.name: json.loads(p.read_text(encoding="utf-8"))["stats"]
        for p in sorted(out_root.glob("*/manifest.json"))
    }
    rows = "\n".join(
        f"| {name} | {s['questions']} | {s['unanswerable']} | {s['documents']} | {s['bytes'] / 1e6:.2f} MB | "
        f"{s['pages'] or '-'} | {s['evidence_with_page']} | {s['estimated_chunks']} |"
        for name, s in sorted(summaries.items())
    )
    text = f"""# Golden sets

Built by `scripts/build_golden.py` from `../shared/datasets` (seeded, byte-for-byte reproducible).
Each folder holds `manifest.json` (the set and its documents, with sha256), `questions.jsonl`
(one record per line: `id`, `question`, `answers`, `evidence` [{{`doc`, `page` (1-based or null),
`text`}}], `answerable`), `docs/` (the documents, ingested under their file names, which evidence
refers to) and its licence notes (`NOTICE`, and `LICENSE` where the source ships one). Documents
the shared datasets already hold are referenced there (`datasets:<path>` in the manifest, checked
by sha256) rather than copied: those sets need the shared datasets folder beside the repository.

| set | questions | unanswerable | documents | size | PDF pages | evidence with page | est. chunks |
|---|---|---|---|---|---|---|---|
{rows}

Size counts the documents' bytes, referenced ones included; evidence with page counts evidence
entries, not questions. Chunk estimates count the default embedder's tokens with 200-token chunks
and 40 overlap (financebench-scanned: counted on the same pages' text layer, as the scans have none).

The FinanceBench sets form an ablation over the same 61 questions: `financebench` (the whole
filings, 1-based evidence pages), `financebench-pages` (only the evidence pages, text layer) and
`financebench-scanned` (the same pages scanned, image only); the last two share question ids and
file names. `docugami-10q-all` asks every reviewed Docugami question over all 20 10-Q PDFs;
`docugami-10q` is its five-PDF subset, kept as the baselines use it.
"""
    (out_root / "README.md").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- main


Built = tuple[GoldenSet, "dict[str, list[str]] | None", "dict[str, str] | None"]
SET_NAMES = (
    "squad2",
    "squad2-ci",
    "clapnq",
    "covidqa",
    "docugami-10q",
    "docugami-10q-all",
    "financebench",
    "financebench-scanned",
    "financebench-pages",
)


def _build_one(
    name: str,
    datasets: Path,
    args: argparse.Namespace,
    sizer: Sizer,
    get: Callable[[str], Built],
    work: Path,
) -> dict[str, Built]:
    """Build ``name`` (and whatever is made alongside it); ``get`` builds a set it depends on."""
    if name in ("squad2", "squad2-ci"):
        squad, squad_ci = build_squad(
            datasets, args.seed, n_paragraphs=150, ci_paragraphs=15, ci_distractors=5
        )
        return {"squad2": (squad, None, None), "squad2-ci": (squad_ci, None, None)}
    if name == "clapnq":
        return {name: (build_clapnq(datasets, args.seed, per_class=100), None, None)}
    if name == "covidqa":
        covid = build_covidqa(
            datasets, args.seed, sizer, n_questions=200, chunk_budget=args.covid_chunk_budget
        )
        return {name: (covid, None, None)}
    if name == "docugami-10q":
        docugami, page_texts = build_docugami(datasets, DOCUGAMI_DOCS)
        return {name: (docugami, page_texts, None)}
    if name == "docugami-10q-all":
        return {name: build_docugami_all(datasets)}
    if name == "financebench":
        return {name: build_financebench(datasets)}
    if name == "financebench-scanned":
        return {name: build_financebench_scanned(datasets)}
    if name == "financebench-pages":
        scanned = get("financebench-scanned")[0]
        pages, page_texts = build_financebench_pages(datasets, scanned, work)
        return {name: (pages, page_texts, None)}
    raise ValueError(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "golden")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-tokens", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=40)
    parser.add_argument("--covid-chunk-budget", type=int, default=1200)
    parser.add_argument(
        "--sets", default="", help=f"comma-separated sets to build (default: all of {', '.join(SET_NAMES)})"
    )
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.sets.split(",") if n.strip()] or list(SET_NAMES)
    unknown = sorted(set(wanted) - set(SET_NAMES))
    if unknown:
        parser.error(f"unknown sets: {', '.join(unknown)} (known: {', '.join(SET_NAMES)})")
    datasets: Path = args.datasets.resolve()
    if not (datasets / "squad2_dev_cs224n_half").is_dir():
        parser.error(f"{datasets} does not look like the shared datasets folder")
    sizer = Sizer(args.chunk_tokens, args.overlap)
    cmd = f"python scripts/build_golden.py --datasets ../shared/datasets --seed {args.seed}"
    if args.covid_chunk_budget != 1200:
        cmd += f" --covid-chunk-budget {args.covid_chunk_budget}"

    with tempfile.TemporaryDirectory(prefix="build-golden-") as work:
        built: dict[str, Built] = {}

        def get(name: str) -> Built:
            if name not in built:
                built.update(_build_one(name, datasets, args, sizer, get, Path(work)))
            return built[name]

        for name in SET_NAMES:
            if name not in wanted:
                continue
            golden, texts, external = get(name)
            out = args.out / golden.name
            out.mkdir(parents=True, exist_ok=True)
            stats = sizer.stats(golden, texts)
            write_set(golden, out, external=external, stats=stats)
            write_notices(out, golden.name, datasets, cmd)
            print(f"{golden.name}: {json.dumps(stats)}")
    write_readme(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
