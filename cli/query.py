"""``rag search``, ``rag ask`` and ``rag doctor``: the query side from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from typing import TYPE_CHECKING, Any

from cli.common import EXIT_FAILED, EXIT_OK, Subparsers, add_command, print_json
from rag.settings import Settings

if TYPE_CHECKING:
    from service.runtime import Runtime


def _runtime(settings: Settings) -> Runtime:
    from service.runtime import Runtime

    # Readers do not take the writer lock, so they work while `rag serve` runs.
    return Runtime(settings, writer=False)


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    with _runtime(settings) as rt:
        result = rt.query.search(args.question, collection=args.collection, k=args.k)
    if args.json:
        print_json(result.model_dump())
        return EXIT_OK
    if not result.reranker.available:
        print(f"(re-ranker {result.reranker.name} unavailable: {result.reranker.reason}; fused order)")
    print(f"{'#':>2} {'dense':>5} {'lex':>5} {'fused':>7} {'rerank':>7}  document (pages)")
    for i, hit in enumerate(result.results, start=1):
        s = hit.scores
        rerank = f"{s.rerank:7.3f}" if s.rerank is not None else "      -"
        pages = f"p{hit.page_start}" + (f"-{hit.page_end}" if hit.page_end != hit.page_start else "")
        print(
            f"{i:>2} {s.dense_rank or '-':>5} {s.lexical_rank or '-':>5} {s.fused:7.4f} {rerank}  "
            f"{hit.document_name} ({pages})"
        )
        print(f"      {' '.join(hit.text.split())[:150]}")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> Any:
        with _runtime(settings) as rt:
            try:
                return await rt.query.ask(
                    args.question, collection=args.collection, bypass_cache=args.no_cache
                )
            finally:
                await rt.gateway.aclose()

    answer = asyncio.run(run())
    if args.json:
        print_json(answer.model_dump())
        return EXIT_OK
    print(answer.answer)
    if answer.citations:
        print()
        for c in answer.citations:
            pages = ",".join(str(p) for p in c.pages)
            print(f"[{c.n}] {c.document_name} p.{pages}: {' '.join(c.snippet.split())[:120]}")
    print(
        f"\n({answer.provider}/{answer.model}{', cached' if answer.cached else ''}; "
        f"{answer.usage.input_tokens} in / {answer.usage.output_tokens} out tokens; "
        f"${answer.usage.cost:.5f}; {answer.timings.get('total', 0):.0f} ms)"
    )
    if not answer.reranker.available:
        print(f"(re-ranker unavailable: {answer.reranker.reason})")
    return EXIT_OK


def doctor_report(settings: Settings) -> dict[str, Any]:
    """What is loaded and working; every check reports instead of raising."""
    import subprocess

    from rag.models import resolve_model

    report: dict[str, Any] = {"data_dir": str(settings.data_dir.resolve())}
    lock = settings.data_dir / "writer.lock"
    report["writer_lock"] = lock.read_text().strip() if lock.exists() and lock.stat().st_size else None
    with _runtime(settings) as rt:
        loadable, origin = resolve_model(settings.embedding_model)
        try:
            report["embedder"] = {
                "model": settings.embedding_model,
                "backend": rt.embedder.spec.backend,
                "origin": origin,
                "path": str(getattr(rt.embedder, "path", loadable)),  # an ONNX export's own file
                "dim": rt.embedder.dim,
                "max_tokens": rt.embedder.max_tokens,
                "ok": True,
            }
        except Exception as exc:
            report["embedder"] = {
                "model": settings.embedding_model,
                "backend": settings.embedding_backend,
                "origin": origin,
                "ok": False,
                "error": str(exc),
            }
        reranker = rt.reranker
        report["reranker"] = {
            "name": reranker.name,
            "available": reranker.available,
            "reason": reranker.reason,
            "fallback": None if reranker.available else "fused order",
        }
        try:
            report["index"] = rt.index.stats()
            report["index"]["ok"] = all(c["consistent"] for c in report["index"]["collections"].values())
        except Exception as exc:
            report["index"] = {"ok": False, "error": str(exc)}
        try:
            report["providers"] = rt.gateway.status()
        except Exception as exc:
            report["providers"] = {"ok": False, "error": str(exc)}
    tesseract = shutil.which("tesseract")
    version = None
    if tesseract:
        out = subprocess.run([tesseract, "--version"], capture_output=True, text=True, timeout=10)
        version = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else None
    report["ocr"] = {"tesseract": tesseract, "version": version, "ok": tesseract is not None}
    try:
        from rag.tokens import get_encoding

        get_encoding(settings.tiktoken_encoding).encode("ok")
        report["tokenizer"] = {"encoding": settings.tiktoken_encoding, "ok": True}
    except Exception as exc:
        report["tokenizer"] = {"encoding": settings.tiktoken_encoding, "ok": False, "error": str(exc)}
    return report


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    report = doctor_report(settings)
    if args.json:
        print_json(report)
    else:
        emb = report["embedder"]
        print(f"embedder   {'ok ' if emb['ok'] else 'BAD'} {emb['model']} ({emb['origin']})")
        rr = report["reranker"]
        state = "ok " if rr["available"] else "off"
        print(
            f"reranker   {state} {rr['name']}"
            + (f" - {rr['reason']}; using fused order" if rr["reason"] else "")
        )
        idx = report["index"]
        print(f"index      {'ok ' if idx.get('ok') else 'BAD'} {json.dumps(idx.get('collections', idx))}")
        for p in report["providers"] if isinstance(report["providers"], list) else []:
            print(
                f"provider   {'ok ' if p['available'] else 'off'} {p['name']} {p['model']} breaker={p['breaker']}"
            )
        ocr = report["ocr"]
        print(f"ocr        {'ok ' if ocr['ok'] else 'BAD'} {ocr['version'] or 'tesseract not installed'}")
        print(f"tokenizer  {'ok ' if report['tokenizer']['ok'] else 'BAD'} {report['tokenizer']['encoding']}")
        if report["writer_lock"]:
            print(f"writer     {report['writer_lock']}")
    healthy = report["embedder"]["ok"] and report["index"].get("ok", False) and report["ocr"]["ok"]
    return EXIT_OK if healthy else EXIT_FAILED


def register(sub: Subparsers) -> None:
    p = add_command(sub, "search", cmd_search, help="retrieval only, with every stage's scores")
    p.add_argument("question")
    p.add_argument("--collection")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p = add_command(sub, "ask", cmd_ask, help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--collection")
    p.add_argument("--no-cache", action="store_true", help="bypass the LLM response cache")
    p.add_argument("--json", action="store_true")
    p = add_command(sub, "doctor", cmd_doctor, help="report models, index, providers and their state")
    p.add_argument("--json", action="store_true")
