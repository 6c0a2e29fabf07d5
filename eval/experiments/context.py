"""Context efficiency: how often the evidence reaches the LLM, against the tokens it costs.

For each answerable question the packed context is checked for the evidence: a gold answer
string, a short gold evidence text (a sentence, not a page), or a passage from a gold page for
sets whose evidence names pages (a figure in a filing is rarely written the way the answer
writes it: "$1577.00" against "(1,577)"). The packer at several budgets, with and without
small-to-big (``pack_neighbours``), is set beside naive top-5 stuffing: the five best chunks,
whole, in rank order, which is what most RAG demos send. Both get the same retrieval, floors
included, and the packer is offered 30 chunks, so the budget decides how much is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.experiments.common import estimate
from eval.golden import GoldenRecord, GoldenSet, load_set
from eval.runner import InProcessTarget, collection_name
from rag.answering import QueryPipeline
from rag.packing import PackedContext
from rag.settings import Settings, load_settings

BUDGETS = (500, 1000, 2000, 3000)
NEIGHBOURS = (0, 1)
NAIVE_TOP = 5
_SHORT_EVIDENCE = 400
"""Evidence texts longer than this are pages, not sentences: they are matched by page instead."""
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MIN_SENTENCE = 25
"""Shorter evidence pieces ("Yes .") would be found anywhere."""
CANDIDATES = 30
"""Chunks offered to the packer, so that the budget, not ``top_k``, decides what is sent."""


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def _sentences(text: str) -> list[str]:
    """The evidence's sentences: gold evidence (ClapNQ's) joins sentences that are not adjacent."""
    return [p for p in (_norm(x) for x in _SENTENCE_END.split(text)) if len(p) >= _MIN_SENTENCE]


def covered(record: GoldenRecord, text: str, pages: set[tuple[str, int]]) -> bool:
    """Whether ``text`` (a context) with its ``pages`` (golden doc, page) holds the record's evidence:
    a gold answer, a gold evidence sentence, or a gold page."""
    context = _norm(text)
    if any(len(a) >= 2 and _norm(a) in context for a in record.answers):
        return True
    for ev in record.evidence:
        short = ev.text if ev.text and len(ev.text) <= _SHORT_EVIDENCE else None
        if short and (_norm(short) in context or any(p in context for p in _sentences(short))):
            return True
        if ev.page is not None and (ev.doc, ev.page) in pages:
            return True
    return False


def _packed_pages(packed: PackedContext, names: dict[str, str]) -> set[tuple[str, int]]:
    return {(names.get(s.document_id, s.document_name), p) for s in packed.sources for p in s.pages}


def run_set(
    golden: GoldenSet, settings: Settings, say: Any, embedding_cache: Path | None = None
) -> dict[str, Any]:
    target = InProcessTarget(settings, embedding_cache=embedding_cache)
    collection = collection_name(golden, settings)
    names = asyncio.run(target.ensure_documents(golden, collection))
    records = [r for r in golden.records if r.answerable]
    runtime = target.runtime
    rows: dict[str, dict[str, list[float]]] = {}

    def note(name: str, hit: bool, tokens: int) -> None:
        row = rows.setdefault(name, {"covered": [], "tokens": []})
        row["covered"].append(float(hit))
        row["tokens"].append(float(tokens))

    pipelines = {
        (budget, n): QueryPipeline(
            settings.model_copy(update={"context_budget_tokens": budget, "pack_neighbours": n}),
            runtime.index,
            runtime.embedder,
            runtime.reranker,
            None,
        )
        for budget in BUDGETS
        for n in NEIGHBOURS
    }
    counter = next(iter(pipelines.values())).packer.count
    retriever = next(iter(pipelines.values())).retriever
    for i, record in enumerate(records, 1):
        vector = runtime.embedder.embed_query(record.question)
        retrieval = retriever.retrieve(record.question, collection=collection, k=CANDIDATES, vector=vector)
        for (budget, n), pipeline in pipelines.items():
            packed = pipeline.pack(retrieval, CANDIDATES)
            hit = covered(record, packed.text, _packed_pages(packed, names))
            note(f"packed@{budget}" + ("+neighbours" if n else ""), hit, packed.tokens_used)
        # the same retrieval (floors included) stuffed whole: only the packing differs
        chunks = [r.stored for r in retrieval.kept[:NAIVE_TOP]]
        text = "\n\n".join(c.chunk.text for c in chunks)
        pages = {
            (names.get(c.chunk.doc_id, c.document_name), p)
            for c in chunks
            for p in range(c.chunk.page_start, c.chunk.page_end + 1)
        }
        note(f"naive_top{NAIVE_TOP}", covered(record, text, pages), counter(text))
        if i % 25 == 0:
            say(f"{golden.name}: {i}/{len(records)}")
    return {
        "questions": len(records),
        "collection": collection,
        "configs": {
            name: {
                "covered": estimate(v["covered"]),
                "tokens_mean": round(sum(v["tokens"]) / len(v["tokens"]), 1),
            }
            for name, v in rows.items()
        },
    }


def run_context(args: argparse.Namespace, sets: Sequence[str], say: Any) -> dict[str, Any]:
    settings = load_settings(data_dir=Path(args.data_dir), reranker="none")
    cache = Path(args.embedding_cache) if args.embedding_cache else None
    return {
        "what": __doc__.split("\n\n")[0] if __doc__ else "",
        "budgets": list(BUDGETS),
        "sets": {name: run_set(load_set(name), settings, say, cache) for name in sets},
    }
