"""Follow-ups rewritten before retrieval: ``python -m eval.experiments followups``.

The multi-turn set (``eval.multiturn``: follow-ups that refer back, over SQuAD 2.0 dev and
FinanceBench's evidence pages) is searched five ways, each follow-up's gold documents scored
at hit@5 and MRR@10 with 95% bootstrap intervals:

- ``raw``: the follow-up as asked ("What religion were they?"): what retrieval gets today;
- ``offline``: the offline rewrite (``rag.followups.OfflineRewriter``);
- ``llm_wiring``: ``LlmRewriter`` as ``make_rewriter`` builds it for a chain with a real provider,
  that provider being the repository's fake OpenAI-compatible server (a real process) scripted
  to reply the gold standalone question. It checks the plumbing end to end (prompt, gateway, HTTP,
  parsing, checks, retrieval): it must match ``standalone``. A model's rewrites need a real model;
- ``concat``: the previous question and the follow-up, joined (the naive baseline);
- ``standalone``: the question the follow-up stands for (the ceiling).

Each source set is ingested as ``rag eval`` ingests it (``common.ingest``: the collection is named
from its contents and chunking, so the retrieval experiment's SQuAD collection is reused), and
every query goes through the service's retrieval stage (``common.retrieve_all``: shipped fusion,
named-document boost, no re-ranker) with documents ranked at their best chunk. The set is built by
putting pronouns in for names, so the offline rules (pronoun -> the previous question's name) are
tested on the shape they were written for: read its figure as the rules' reach on that shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from eval.experiments.common import (
    Corpus,
    Say,
    doc_ranking,
    estimate,
    experiment_settings,
    header,
    ingest,
    progress,
    retrieve_all,
)
from eval.fake_llm import fake_llm_server
from eval.golden import REPO_ROOT
from eval.metrics import retrieval as rm
from eval.multiturn import DEFAULT_PATH, Conversation, SourceName, load_multiturn, source_sets
from eval.runner import InProcessTarget, RunOptions
from rag.followups import LlmRewriter, OfflineRewriter, Rewrite, Turn, make_rewriter, refers_back
from rag.llm.gateway import Gateway
from rag.settings import Settings, load_settings

METRICS = ("hit@5", "mrr@10")
SYSTEMS = ("raw", "offline", "llm_wiring", "concat", "standalone")
LABELS = {
    "raw": "raw follow-up",
    "offline": "offline rewrite",
    "llm_wiring": "LLM rewrite, fake provider (wiring only)",
    "concat": "previous question + follow-up",
    "standalone": "standalone question (ceiling)",
}
PAIRS = (("offline", "raw"), ("standalone", "offline"), ("offline", "concat"), ("llm_wiring", "standalone"))


def turns(conversation: Conversation) -> list[Turn]:
    return [Turn(question=t.question, answer=t.answer) for t in conversation.turns]


async def _llm_rewrites(
    conversations: Sequence[Conversation], server: Any, scratch: Path
) -> tuple[list[Rewrite], dict[str, Any]]:
    """Every follow-up through ``make_rewriter``'s LLM rewriter, against the scripted fake provider."""
    providers = scratch / "providers.toml"
    providers.write_text(
        f'[providers.fake]\ntype = "openai"\nbase_url = "{server.openai_url}"\nmodel = "fake-rewriter"\n',
        encoding="utf-8",
    )
    settings = load_settings(
        data_dir=scratch / "var", providers_file=providers, llm_chain="fake", cache_enabled=False
    )
    gateway = Gateway.from_settings(settings, registry=CollectorRegistry(), environ={})
    try:
        rewriter = make_rewriter(settings, gateway)
        if not isinstance(rewriter, LlmRewriter):
            raise AssertionError(f"make_rewriter chose {type(rewriter).__name__} for a chain with a model")
        flagged = [c for c in conversations if refers_back(c.followup)]
        server.mode(script=[{"kind": "ok", "text": c.standalone} for c in flagged])
        rewrites, seconds = [], []
        for conversation in conversations:
            started = time.perf_counter()
            rewrites.append(await rewriter.rewrite(conversation.followup, turns(conversation)))
            seconds.append(time.perf_counter() - started)
    finally:
        await gateway.aclose()
    calls = server.calls()
    aligned = len(calls) == len(flagged) and all(
        c.followup in str(call["body"]["messages"][-1]["content"])
        for c, call in zip(flagged, calls, strict=True)
    )
    methods: dict[str, int] = {}
    for rewrite in rewrites:
        methods[rewrite.method] = methods.get(rewrite.method, 0) + 1
    info = {
        "provider": "tests/fakes/llm_server.py (OpenAI format), scripted to reply each gold standalone question",
        "calls": len(calls),
        "calls_expected": len(flagged),
        "calls_carry_their_followup": aligned,
        "max_tokens_sent": sorted({int(call["body"].get("max_tokens") or 0) for call in calls}),
        "methods": methods,
        "latency_ms_median": round(statistics.median(seconds) * 1000, 1) if seconds else None,
    }
    return rewrites, info


def _llm_wiring(conversations: Sequence[Conversation], say: Say) -> tuple[list[Rewrite], dict[str, Any]]:
    fake = fake_llm_server()
    with tempfile.TemporaryDirectory(prefix="rag-followups-") as tmp:
        server = fake.FakeLLMServer.start(Path(tmp) / "server.log")
        try:
            say(f"LLM wiring: {len(conversations)} follow-ups through the fake provider")
            return asyncio.run(_llm_rewrites(conversations, server, Path(tmp)))
        finally:
            server.stop()


def _scores(
    target: InProcessTarget,
    corpus: Corpus,
    conversations: Sequence[Conversation],
    queries: Sequence[str],
    say: Say,
) -> dict[str, dict[str, float]]:
    """Per-conversation hit@5 and MRR@10 of one system's queries over one source's collection."""
    retrieved, _ = retrieve_all(target, corpus, list(queries), say)
    ranked = {
        c.id: doc_ranking(r.fused, corpus.golden_ids) for c, r in zip(conversations, retrieved, strict=True)
    }
    qrels = {c.id: dict.fromkeys(c.evidence, 1) for c in conversations}
    run = rm.ranked_run(ranked)
    return {m: rm.per_query(m, run, qrels) for m in METRICS}


def _table(results: Mapping[str, Any], sources: Mapping[str, int]) -> str:
    def cell(e: Mapping[str, Any]) -> str:
        return "-" if e.get("value") is None else f"{e['value']:.3f} [{e['low']:.2f}, {e['high']:.2f}]"

    names = list(sources)
    head = ["method", f"hit@5, all (n={sum(sources.values())})", "MRR@10, all"]
    head += [f"hit@5, {s} (n={sources[s]})" for s in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for system in SYSTEMS:
        row = results[system]
        cells = [LABELS[system], cell(row["all"]["hit@5"]), cell(row["all"]["mrr@10"])]
        cells += [cell(row[s]["hit@5"]) for s in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _delta(e: Mapping[str, Any]) -> str:
    return f"{e['value']:+.3f} [{e['low']:+.2f}, {e['high']:+.2f}]"


def markdown(payload: Mapping[str, Any]) -> str:
    sources = {s: n for s, n in payload["conversations"]["by_source"].items()}
    diff = payload["paired_difference"]
    lines = [
        "# Follow-up rewriting: retrieval of follow-ups that refer back",
        "",
        f"`{payload['command']}`: {payload['conversations']['total']} conversations of the multi-turn set "
        f"(`{payload['set']}`), gold documents at hit@5 and MRR@10 (95% bootstrap intervals), the "
        "service's retrieval stage (shipped fusion, named-document boost, no re-ranker).",
        "",
        _table(payload["results"], sources),
        "",
        "Paired differences (same conversations, hit@5 / MRR@10): "
        + "; ".join(f"{name}: {_delta(d['hit@5'])} / {_delta(d['mrr@10'])}" for name, d in diff.items()),
        "",
        "The LLM row is wiring only: the fake provider replies each gold standalone question, so it "
        "must equal the ceiling when prompt, gateway, HTTP, parsing and checks work; a model's rewrites "
        "need a real model to measure. The set puts pronouns in for names, the shape the offline rules "
        "resolve, so the offline figure is their reach on that shape, not on every follow-up.",
        "",
    ]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def run_followups(args: argparse.Namespace) -> dict[str, Any]:
    say = progress(args)
    # no re-ranker: the queries are scored on the fused order, so loading one would be wasted
    settings: Settings = experiment_settings(Path(args.data_dir), reranker="none")
    set_path = Path(getattr(args, "multiturn", None) or DEFAULT_PATH)
    conversations = load_multiturn(set_path).conversations
    sources = source_sets(Path(args.datasets))
    offline = OfflineRewriter(settings.followup_history_turns)
    offline_rewrites = [offline.rewrite_now(c.followup, turns(c)) for c in conversations]
    llm_rewrites, llm_info = _llm_wiring(conversations, say)
    queries: dict[str, list[str]] = {
        "raw": [c.followup for c in conversations],
        "offline": [r.query for r in offline_rewrites],
        "llm_wiring": [r.query for r in llm_rewrites],
        "concat": [f"{c.turns[-1].question} {c.followup}" for c in conversations],
        "standalone": [c.standalone for c in conversations],
    }
    per_query: dict[str, dict[str, dict[str, float]]] = {s: {m: {} for m in METRICS} for s in SYSTEMS}
    by_source: dict[SourceName, list[int]] = {}
    for i, c in enumerate(conversations):
        by_source.setdefault(c.source, []).append(i)
    target = InProcessTarget(settings, RunOptions(answers=False))
    seconds: dict[str, float] = {}
    try:
        for source, indices in by_source.items():
            corpus = ingest(target, sources[source], say)
            started = time.perf_counter()
            subset = [conversations[i] for i in indices]
            for system in SYSTEMS:
                scores = _scores(target, corpus, subset, [queries[system][i] for i in indices], say)
                for metric in METRICS:
                    per_query[system][metric].update(scores[metric])
            seconds[source] = round(time.perf_counter() - started + corpus.ingest_s, 1)
            say(f"{source}: {len(indices)} conversations scored")
    finally:
        asyncio.run(target.aclose())
    ids = {source: [conversations[i].id for i in indices] for source, indices in by_source.items()}
    results = {
        system: {
            "all": {m: estimate(list(per_query[system][m].values()), args.seed) for m in METRICS},
            **{
                source: {m: estimate([per_query[system][m][q] for q in qids], args.seed) for m in METRICS}
                for source, qids in ids.items()
            },
        }
        for system in SYSTEMS
    }
    paired = {
        f"{a} - {b}": {
            m: estimate([per_query[a][m][q] - per_query[b][m][q] for q in per_query[a][m]], args.seed)
            for m in METRICS
        }
        for a, b in PAIRS
    }
    rewritten = sum(r.rewritten for r in offline_rewrites)
    payload = header("python -m eval.experiments followups", settings)
    payload |= {
        "what": (__doc__ or "").split("\n\n")[0],
        "set": _shown(set_path),
        "conversations": {
            "total": len(conversations),
            "by_source": {s: len(v) for s, v in by_source.items()},
            "offline_rewritten": rewritten,
            "offline_equals_standalone": sum(
                r.query.strip() == c.standalone for r, c in zip(offline_rewrites, conversations, strict=True)
            ),
        },
        "systems": LABELS,
        "results": results,
        "paired_difference": paired,
        "llm_wiring": llm_info,
        "seconds": seconds,
        "per_conversation": [
            {
                "id": c.id,
                "shape": c.shape,
                "followup": c.followup,
                "offline": {"query": o.query, "method": o.method, "reason": o.reason},
                "llm_wiring": {"query": w.query, "method": w.method},
                "standalone": c.standalone,
                **{f"hit@5 {s}": per_query[s]["hit@5"][c.id] for s in SYSTEMS},
            }
            for c, o, w in zip(conversations, offline_rewrites, llm_rewrites, strict=True)
        ],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "followups.md").write_text(markdown(payload), encoding="utf-8")
    plain: dict[str, Any] = json.loads(json.dumps(payload, default=str))
    return plain
