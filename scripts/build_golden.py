#!/usr/bin/env python3
"""Build the shipped golden sets in ``data/golden`` from the public datasets, reproducibly.

    python scripts/build_golden.py --datasets ../shared/datasets [--out data/golden] [--seed 0]

Every choice is seeded and every file is written in a stable order, so running it twice gives
byte-identical sets. Chunk estimates use the default embedder's own tokenizer (offline) with the
default chunking (200 tokens, 40 overlap); sentence-aware chunking lands a little above them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import json
import math
import random
import re
import shutil
import sys
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


def build_docugami(datasets: Path, docs: Sequence[str]) -> tuple[GoldenSet, dict[str, list[str]]]:
    import pypdfium2 as pdfium

    root = datasets / "docugami_sec10q"
    all_docs = sorted(p.name for p in (root / "docs").glob("*.pdf"))
    page_texts: dict[str, list[str]] = {}
    for name in docs:
        pdf = pdfium.PdfDocument(str(root / "docs" / name))
        try:
            page_texts[name] = [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
        finally:
            pdf.close()
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
}
LICENSE_FILES = {"clapnq": "clapnq_dev/LICENSE", "covidqa": "covidqa_deepset_200423/LICENSE"}
LICENSE_FILES["docugami-10q"] = "docugami_sec10q/LICENSE"


def write_notices(out: Path, name: str, datasets: Path, build_cmd: str) -> None:
    key = "squad2" if name.startswith("squad2") else name
    (out / "NOTICE").write_text(NOTICES[key] + f"\nBuilt by: {build_cmd}\n", encoding="utf-8")
    if key in LICENSE_FILES:
        shutil.copyfile(datasets / LICENSE_FILES[key], out / "LICENSE")


def write_readme(out_root: Path, summaries: dict[str, dict[str, Any]]) -> None:
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
refers to) and its licence notes (`NOTICE`, and `LICENSE` where the source ships one).

| set | questions | unanswerable | documents | size | PDF pages | evidence with page | est. chunks |
|---|---|---|---|---|---|---|---|
{rows}

Chunk estimates count the default embedder's tokens with 200-token chunks and 40 overlap.
"""
    (out_root / "README.md").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- main


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
    args = parser.parse_args(argv)
    datasets: Path = args.datasets.resolve()
    if not (datasets / "squad2_dev_cs224n_half").is_dir():
        parser.error(f"{datasets} does not look like the shared datasets folder")
    sizer = Sizer(args.chunk_tokens, args.overlap)
    cmd = f"python scripts/build_golden.py --datasets ../shared/datasets --seed {args.seed}"
    if args.covid_chunk_budget != 1200:
        cmd += f" --covid-chunk-budget {args.covid_chunk_budget}"

    squad, squad_ci = build_squad(datasets, args.seed, n_paragraphs=150, ci_paragraphs=15, ci_distractors=5)
    docugami, page_texts = build_docugami(datasets, DOCUGAMI_DOCS)
    sets = [
        (squad, None),
        (squad_ci, None),
        (build_clapnq(datasets, args.seed, per_class=100), None),
        (
            build_covidqa(datasets, args.seed, sizer, n_questions=200, chunk_budget=args.covid_chunk_budget),
            None,
        ),
        (docugami, page_texts),
    ]
    summaries = {}
    for golden, texts in sets:
        out = args.out / golden.name
        out.mkdir(parents=True, exist_ok=True)
        stats = sizer.stats(golden, texts)
        write_set(golden, out, stats=stats)
        write_notices(out, golden.name, datasets, cmd)
        summaries[golden.name] = stats
        print(f"{golden.name}: {json.dumps(stats)}")
    write_readme(args.out, summaries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
