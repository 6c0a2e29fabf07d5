"""Run a golden set through the system and score it: ingest, search, ask, summarize.

The same loop drives the embedded service (``InProcessTarget``) and a running one over HTTP
(``eval.http_client.HttpTarget``): a target only has to ingest documents and answer ``search``
and ``ask`` with the service's own response shapes. Each set gets a collection of its own,
named from its contents and the settings that shape its chunks, so a second run finds every
document already indexed (content-hash duplicates) and a run with other chunking never
reuses stale chunks.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, get_args

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from eval.golden import GoldenSet, slug
from eval.metrics.summary import CitedSource, EvalSummary, QuestionOutcome, RetrievedItem, summarize
from ingest.chunking import CHUNKS_REVISION
from rag.answer import Answer, SearchResult
from rag.citations import CITATION_MARKER
from rag.errors import InvalidRequest, RagError
from rag.retrieval import RETRIEVAL_MODES, QueryEmbedder, RetrievalMode
from rag.settings import Settings, load_settings

SEARCH_DEPTH = 100
"""Chunks asked of ``search`` per question: deep enough for recall@100 at document level."""

# Settings that change what is stored for the same bytes: they are part of the collection name.
INGEST_KEYS = (
    "embedding_model",
    "chunk_tokens",
    "chunk_overlap_tokens",
    "ocr_enabled",
    "ocr_language",
    "ocr_dpi",
    "ocr_min_chars",
    "ocr_min_printable_ratio",
    "tables",
    "context_headers",
)
# Settings recorded in every report, so a baseline says what it measured.
REPORTED_KEYS = (
    *INGEST_KEYS,
    "dense_k",
    "lexical_k",
    "fusion",
    "rrf_k",
    "fusion_dense_weight",
    "top_k",
    "reranker",
    "reranker_model",
    "rerank_candidates",
    "relevance_floor",
    "dense_floor",
    "context_budget_tokens",
    "llm_chain",
)
_MARKER = re.compile(r"\s*" + CITATION_MARKER.pattern)  # with the space before it


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What a run varies besides ``Settings``."""

    retrieval: RetrievalMode = "hybrid"
    bypass_cache: bool = True
    """Answers are computed, not replayed: a cached answer would hide a change in the answerer."""
    answers: bool = True
    """``answers=off``: retrieval only (ablations of retrieval levers need no answerer)."""


def parse_overrides(text: str | None) -> dict[str, str]:
    """``"fusion=rrf,dense_k=20"`` -> ``{"fusion": "rrf", "dense_k": "20"}``; ``none``/``""`` -> ``{}``."""
    out: dict[str, str] = {}
    if text is None or text.strip().lower() in ("", "default", "defaults"):
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or not key:
            raise InvalidRequest(f"configuration override {part!r} is not KEY=VALUE")
        out[key] = value.strip()
    return out


def apply_overrides(settings: Settings, overrides: Mapping[str, str]) -> tuple[Settings, RunOptions]:
    """Settings with ``overrides`` applied (validated like the environment), plus the run options.

    ``retrieval=hybrid|dense|lexical`` and ``cache=on|off`` are run options; every other key is a
    ``Settings`` field (``reranker=none``, ``chunk_tokens=300``, ``context_budget_tokens=1500``...).
    """
    fields: dict[str, str | None] = {}
    retrieval: RetrievalMode = "hybrid"
    bypass_cache = True
    answers = True
    for key, value in overrides.items():
        if key == "retrieval":
            mode = next((m for m in RETRIEVAL_MODES if m == value), None)
            if mode is None:
                raise InvalidRequest(f"retrieval must be one of {', '.join(RETRIEVAL_MODES)}, not {value!r}")
            retrieval = mode
        elif key == "answers":
            if value.lower() not in ("on", "off", "true", "false"):
                raise InvalidRequest("answers must be on or off")
            answers = value.lower() in ("on", "true")
        elif key == "cache":
            if value.lower() not in ("on", "off", "true", "false"):
                raise InvalidRequest("cache must be on or off")
            bypass_cache = value.lower() in ("off", "false")
        elif key in Settings.model_fields:
            optional = type(None) in get_args(Settings.model_fields[key].annotation)
            fields[key] = None if optional and value.lower() in ("none", "null") else value
        else:
            raise InvalidRequest(f"unknown setting {key!r} in a configuration override")
    if fields:
        try:
            settings = load_settings(**{**settings.model_dump(), **fields})
        except (ValidationError, ValueError) as exc:
            raise InvalidRequest(f"invalid configuration override: {_first_line(exc)}") from exc
    if retrieval == "lexical" and settings.dense_floor is not None:
        # the floor compares the best dense cosine, which a lexical-only run never has
        raise InvalidRequest("retrieval=lexical has no dense score for dense_floor: add dense_floor=none")
    return settings, RunOptions(retrieval=retrieval, bypass_cache=bypass_cache, answers=answers)


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
    return str(exc).splitlines()[0]


def collection_name(golden: GoldenSet, settings: Settings) -> str:
    """``eval-<set>-<hash>``: the set's contents plus every setting that shapes its chunks.

    Fits the API's collection rule (letters, digits, ``._-``, at most 64 characters).
    """
    ingest = "|".join(f"{k}={getattr(settings, k)}" for k in INGEST_KEYS) + f"|chunks={CHUNKS_REVISION}"
    if settings.embedding_backend != "torch":  # torch's collections keep the names they had
        ingest += f"|backend={settings.embedding_backend}"
    digest = hashlib.sha256(f"{golden.content_key()}|{ingest}".encode()).hexdigest()[:12]
    return f"eval-{slug(golden.name)[:40]}-{digest}"


def reported_config(settings: Settings, options: RunOptions, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {k: getattr(settings, k, None) for k in REPORTED_KEYS}
    config |= {"retrieval": options.retrieval, "bypass_cache": options.bypass_cache}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in (config | extra).items()}


# --------------------------------------------------------------------------- targets


class Target(Protocol):
    """A system under evaluation: the embedded service or a running one."""

    description: str

    async def ensure_documents(self, golden: GoldenSet, collection: str) -> dict[str, str]:
        """Index the set's documents; returns the service's document id -> golden document id."""
        ...

    async def search(self, question: str, collection: str, k: int) -> SearchResult: ...

    async def ask(self, question: str, collection: str) -> Answer: ...

    async def aclose(self) -> None: ...


class _RememberingEmbedder:
    """Query vectors of the last few questions: ``search`` then ``ask`` embed the same question."""

    def __init__(self, embedder: QueryEmbedder, capacity: int = 64) -> None:
        self._embedder = embedder
        self._capacity = capacity
        self._vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector = self._vectors.get(text)
        if vector is None:
            vector = self._embedder.embed_query(text)
            self._vectors[text] = vector
            while len(self._vectors) > self._capacity:
                self._vectors.popitem(last=False)
        return vector


class InProcessTarget:
    """The embedded service in this process, built from ``Settings`` like ``rag serve`` builds it."""

    def __init__(
        self, settings: Settings, options: RunOptions | None = None, *, embedding_cache: Path | None = None
    ) -> None:
        """``embedding_cache``: a file of vectors by model and exact text, shared across runs."""
        from rag.answering import QueryPipeline
        from service.runtime import Runtime

        self.settings = settings
        self.options = options or RunOptions()
        embedder = None
        if embedding_cache is not None:
            from eval.embedding_cache import CachedEmbedder

            embedder = CachedEmbedder(Runtime(settings, writer=False).embedder, embedding_cache)
        self.runtime = Runtime(settings, writer=True, embedder=embedder)
        self.pipeline = QueryPipeline(
            settings,
            self.runtime.index,
            _RememberingEmbedder(self.runtime.embedder),
            self.runtime.reranker,
            self.runtime.gateway,
            mode=self.options.retrieval,
        )
        reranker = self.runtime.reranker
        state = reranker.name if reranker.available else f"{reranker.name} unavailable, fused order"
        self.description = f"in-process, data in {settings.data_dir}, re-ranker: {state}"

    async def ensure_documents(self, golden: GoldenSet, collection: str) -> dict[str, str]:
        ids: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="rag-eval-") as scratch:
            for doc in golden.documents:
                data = doc.read_bytes()  # checks the recorded sha256: a changed copy fails loudly
                path = doc.path
                if path is None:
                    path = Path(scratch) / _scratch_name(doc.id)
                    path.write_bytes(data)
                result = self.runtime.ingestion.ingest_file(path, name=doc.id, collection=collection)
                ids.setdefault(result.document.id, doc.id)
        return ids

    async def search(self, question: str, collection: str, k: int) -> SearchResult:
        return self.pipeline.search(question, collection=collection, k=k)

    async def ask(self, question: str, collection: str) -> Answer:
        return await self.pipeline.ask(
            question, collection=collection, bypass_cache=self.options.bypass_cache
        )

    async def aclose(self) -> None:
        try:
            await self.runtime.gateway.aclose()
        finally:
            self.runtime.close()


def _scratch_name(doc_id: str) -> str:
    suffix = Path(doc_id).suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,5}", Path(doc_id).suffix) else ".txt"
    return hashlib.sha1(doc_id.encode()).hexdigest()[:16] + suffix


def eval_settings(settings: Settings) -> Settings:
    """The service's settings with ``search`` allowed deep enough for recall@100 (nothing else changes)."""
    if settings.max_top_k >= SEARCH_DEPTH:
        return settings
    return settings.model_copy(update={"max_top_k": SEARCH_DEPTH})


# --------------------------------------------------------------------------- outcomes


def strip_markers(text: str) -> str:
    """The answer without its ``[n]`` labels: they are citations, not words of the answer."""
    return _MARKER.sub("", text).strip()


def _pages(start: int, end: int) -> list[int]:
    return list(range(start, max(start, end) + 1))


def to_outcome(
    qid: str, answer: Answer | None, search: SearchResult | None, golden_ids: Mapping[str, str]
) -> QuestionOutcome:
    """One question's outcome in golden document names (service ids mapped back, names as fallback)."""

    def golden(document_id: str, name: str) -> str:
        return golden_ids.get(document_id, name)

    retrieved = [
        RetrievedItem(
            doc=golden(h.document_id, h.document_name),
            pages=_pages(h.page_start, h.page_end),
            score=h.scores.rerank if h.scores.rerank is not None else h.scores.fused,
            chunk_id=h.chunk_id,
        )
        for h in (search.results if search is not None else [])
    ]
    if answer is None:
        return QuestionOutcome(id=qid, retrieved=retrieved, asked=False)
    # a citation carries a short snippet; the chunk it names is the source the claim rests on
    chunk_text = {h.chunk_id: h.text for h in (search.results if search is not None else [])}
    citations = [
        CitedSource(
            doc=golden(c.document_id, c.document_name),
            pages=list(c.pages),
            text=chunk_text.get(c.chunk_id, c.snippet),
        )
        for c in answer.citations
    ]
    return QuestionOutcome(
        id=qid,
        answer="" if answer.abstained else strip_markers(answer.answer),
        abstained=answer.abstained,
        citations=citations,
        retrieved=retrieved,
        timings_ms=dict(answer.timings),
        input_tokens=answer.usage.input_tokens,
        output_tokens=answer.usage.output_tokens,
        cost=answer.usage.cost,
        cached=answer.cached,
        provider=answer.provider,
    )


# --------------------------------------------------------------------------- the loop

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class SetRun:
    """A finished run of one set: the summary plus how long each phase took."""

    summary: EvalSummary
    collection: str
    seconds: dict[str, float] = field(default_factory=dict)


async def run_set(
    golden: GoldenSet,
    target: Target,
    *,
    collection: str,
    config: Mapping[str, Any] | None = None,
    search_k: int = SEARCH_DEPTH,
    answers: bool = True,
    progress: Progress | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
) -> SetRun:
    """Ingest (or find) the documents, ask every question, score the outcomes.

    A question the system fails on (any ``RagError``) is recorded as an error, not skipped:
    errors score zero, so a broken provider cannot make a run look better.
    """
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    say(f"{golden.name}: indexing {len(golden.documents)} documents into {collection} ({target.description})")
    golden_ids = await target.ensure_documents(golden, collection)
    ingested = time.perf_counter()
    outcomes: list[QuestionOutcome] = []
    total = len(golden.records)
    for i, record in enumerate(golden.records, 1):
        try:
            # ask first: its timings are the real query's; search then reuses the question's vector
            answer = await target.ask(record.question, collection) if answers else None
            found = await target.search(record.question, collection, search_k)
            outcomes.append(to_outcome(record.id, answer, found, golden_ids))
        except RagError as exc:
            outcomes.append(QuestionOutcome(id=record.id, error=f"{exc.code}: {exc.message}"))
        if i % 25 == 0 or i == total:
            rate = i / max(time.perf_counter() - ingested, 1e-9)
            say(f"{golden.name}: {i}/{total} questions ({rate:.1f}/s)")
    asked = time.perf_counter()
    run_config = dict(config or {}) | {"collection": collection, "target": target.description}
    summary = summarize(golden, outcomes, config=run_config, seed=seed, n_resamples=n_resamples)
    seconds = {
        "ingest": round(ingested - started, 2),
        "questions": round(asked - ingested, 2),
        "total": round(time.perf_counter() - started, 2),
    }
    summary.ops["seconds"] = seconds
    return SetRun(summary=summary, collection=collection, seconds=seconds)


__all__ = [
    "RETRIEVAL_MODES",
    "SEARCH_DEPTH",
    "InProcessTarget",
    "RetrievalMode",
    "RunOptions",
    "SetRun",
    "Target",
    "apply_overrides",
    "collection_name",
    "eval_settings",
    "parse_overrides",
    "reported_config",
    "run_set",
    "stderr_progress",
    "strip_markers",
    "to_outcome",
]
