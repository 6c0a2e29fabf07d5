"""``rag eval``: score golden sets, write reports, gate on a baseline, compare two configurations.

Registered by ``cli.main`` like the other sub-commands. In-process runs keep their own data
directory (``<data dir>/eval``) so an evaluation never takes the writer lock of a running
service or mixes its collections with the user's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, Subparsers, add_command
from eval.golden import REPO_ROOT, GoldenSet, list_sets, load_set
from eval.metrics.summary import EvalSummary
from eval.report import (
    compare_to_baseline,
    comparison_markdown,
    format_summary,
    headline_values,
    load_report,
    write_report,
)
from eval.runner import (
    InProcessTarget,
    RunOptions,
    SetRun,
    Target,
    apply_overrides,
    collection_name,
    eval_settings,
    parse_overrides,
    reported_config,
    run_set,
    stderr_progress,
)
from rag.errors import InvalidRequest
from rag.settings import Settings

DEFAULT_OUT = REPO_ROOT / "eval" / "reports"
CI_SETS = frozenset({"squad2-ci"})
"""Shipped subsets for the CI gate: ``--all`` leaves them out (they repeat a full set's questions)."""
FILING_SETS = frozenset({"financebench", "docugami-10q-all", "financebench-scanned", "financebench-pages"})
"""Long filings (3,628 pages in financebench): about an hour to ingest on 2 cores, so ``--all``
(and ``make eval``) leaves them out; name them with ``--set`` (``make eval-filings``)."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One configuration to run: a label, its settings and run options."""

    label: str
    settings: Settings
    options: RunOptions


# --------------------------------------------------------------------------- set selection


def _sets(args: argparse.Namespace) -> list[GoldenSet]:
    if args.all and args.set:
        raise InvalidRequest("use --set or --all, not both")
    if args.all:
        names = [n for n in list_sets() if n not in CI_SETS | FILING_SETS]
    elif args.set:
        names = list(args.set)
    else:
        raise InvalidRequest(f"name a golden set with --set (shipped: {', '.join(list_sets())}) or use --all")
    if args.limit is not None and args.limit < 1:
        raise InvalidRequest("--limit must be at least 1")
    loaded = [load_set(n) for n in names]
    return [g.subset(args.limit) if args.limit else g for g in loaded]


def _variants(args: argparse.Namespace, settings: Settings) -> list[Variant]:
    base = parse_overrides(args.config)
    specs = list(args.compare) if args.compare else [args.config or "default"]
    if args.url and (args.compare or base):
        raise InvalidRequest(
            "--config and --compare apply to in-process runs; a service has its own settings"
        )
    variants = []
    for spec in specs:
        overrides = base | parse_overrides(spec) if args.compare else base
        tuned, options = apply_overrides(settings, overrides)
        label = ",".join(f"{k}={v}" for k, v in overrides.items()) or "default"
        variants.append(Variant(label, tuned, options))
    if args.compare and variants[0].label == variants[1].label:
        raise InvalidRequest("--compare needs two different configurations")
    return variants


# --------------------------------------------------------------------------- running


def _quiet_service_logs(settings: Settings) -> None:
    """Per-question INFO events would bury the progress lines; warnings still show."""
    if settings.log_level.upper() != "DEBUG":
        for name in ("rag", "ingest"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _target(args: argparse.Namespace, variant: Variant) -> Target:
    if args.url:
        from eval.http_client import HttpTarget

        key = args.api_key
        if args.api_key_file:
            try:
                key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InvalidRequest(
                    f"cannot read --api-key-file {args.api_key_file}: {exc.strerror}"
                ) from exc
        return HttpTarget(args.url, api_key=key, bypass_cache=variant.options.bypass_cache)
    return InProcessTarget(variant.settings, variant.options, embedding_cache=args.embedding_cache)


async def _run_variant(
    args: argparse.Namespace, variant: Variant, sets: list[GoldenSet], say: Any
) -> list[SetRun]:
    target = _target(args, variant)
    runs: list[SetRun] = []
    try:
        for golden in sets:
            config = reported_config(variant.settings, variant.options, label=variant.label)
            if args.url:
                config = {"url": args.url, "bypass_cache": variant.options.bypass_cache}
            runs.append(
                await run_set(
                    golden,
                    target,
                    collection=collection_name(golden, variant.settings),
                    config=config,
                    answers=variant.options.answers,
                    progress=say,
                )
            )
    finally:
        await target.aclose()
    return runs


# --------------------------------------------------------------------------- reporting


def _baseline_for(path: Path, set_name: str, many: bool) -> EvalSummary | None:
    if path.is_dir():
        candidate = path / f"{set_name}.json"
        return load_report(candidate) if candidate.exists() else None
    if many:
        raise InvalidRequest("with several sets, --baseline must be a folder of <set>.json reports")
    return load_report(path)


def _save_baseline(summary: EvalSummary, folder: Path) -> Path:
    """A baseline keeps the figures and the configuration; per-question rows stay in the reports."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{summary.set_name}.json"
    slim = summary.model_copy(update={"questions": []})
    path.write_text(slim.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return path


def _print(text: str, *, json_mode: bool) -> None:
    # with --json, stdout carries only the JSON object; everything else goes to stderr
    print(text, file=sys.stderr if json_mode else sys.stdout)


def _export_feedback(args: argparse.Namespace, settings: Settings) -> int:
    from eval.feedback import export_feedback

    if args.set or args.all or args.url:
        raise InvalidRequest(
            "--from-feedback exports the service's feedback; it takes no --set, --all or --url"
        )
    from rag.db import database

    if not settings.database_url and not settings.conversations_path.exists():
        raise InvalidRequest(f"no feedback yet: {settings.conversations_path} does not exist")
    out = Path(args.from_feedback)
    count = export_feedback(database(settings, "conversations"), out, rating=args.rating)
    print(f"{count} golden-set candidate(s) written to {out}: review each, then delete its 'review' object")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    if args.from_feedback:
        return _export_feedback(args, settings)
    started = time.perf_counter()
    settings = eval_settings(settings.model_copy(update={"data_dir": settings.data_dir / "eval"}))
    _quiet_service_logs(settings)
    sets = _sets(args)
    variants = _variants(args, settings)
    say = stderr_progress if not args.quiet else (lambda _m: None)
    out_dir = Path(args.out)
    results: list[list[SetRun]] = []
    for variant in variants:
        if len(variants) > 1:
            say(f"configuration {variant.label}")
        results.append(asyncio.run(_run_variant(args, variant, sets, say)))

    status = EXIT_OK
    payload: dict[str, Any] = {}
    for i, golden in enumerate(sets):
        runs = [r[i] for r in results]
        for variant, run in zip(variants, runs, strict=True):
            tag = golden.name if len(variants) == 1 else f"{golden.name}-{_file_tag(variant.label)}"
            paths = write_report(run.summary, out_dir, tag)
            _print(format_summary(run.summary), json_mode=args.json)
            seconds = run.seconds
            _print(
                f"time: ingest {seconds['ingest']:.0f} s, questions {seconds['questions']:.0f} s"
                f" · report {paths.json} (.md, .html)\n",
                json_mode=args.json,
            )
            if run.summary.counts.get("errors", 0) == run.summary.counts.get("questions", 0):
                _print(f"{golden.name}: every question failed; see {paths.json}", json_mode=args.json)
                status = EXIT_FAILED
            if args.save_baseline:
                _print(
                    f"baseline written: {_save_baseline(run.summary, Path(args.save_baseline))}",
                    json_mode=args.json,
                )
        if len(variants) == 2:
            labels = (variants[0].label, variants[1].label)
            table = comparison_markdown(runs[0].summary, runs[1].summary, labels)
            compare_path = out_dir / f"{paths.json.stem}-compare.md"
            compare_path.write_text(
                f"# {golden.name}: {labels[0]} vs {labels[1]}\n\n{table}", encoding="utf-8"
            )
            _print(
                f"{golden.name}: A = {labels[0]}, B = {labels[1]}\n{table}\n(written to {compare_path})",
                json_mode=args.json,
            )
            payload[golden.name] = {
                label: headline_values(r.summary) for label, r in zip(labels, runs, strict=True)
            }
        else:
            payload[golden.name] = headline_values(runs[0].summary)
        if args.baseline:
            baseline = _baseline_for(Path(args.baseline), golden.name, len(sets) > 1)
            if baseline is None:
                _print(f"{golden.name}: no baseline in {args.baseline}; not gated", json_mode=args.json)
                continue
            regressions = compare_to_baseline(runs[-1].summary, baseline)
            if regressions:
                status = EXIT_FAILED
                _print(
                    f"{golden.name}: {len(regressions)} regression(s) against the baseline:",
                    json_mode=args.json,
                )
                for reg in regressions:
                    _print(f"  {reg.describe()}", json_mode=args.json)
            else:
                _print(f"{golden.name}: no regression against the baseline", json_mode=args.json)
    _print(f"rag eval: {time.perf_counter() - started:.0f} s in all", json_mode=args.json)
    if args.json:
        flat = payload[sets[0].name] if len(sets) == 1 else payload
        print(json.dumps(flat, indent=2, sort_keys=True))
    return status


def _file_tag(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in label)[:60] or "default"


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "eval",
        cmd_eval,
        help="score golden sets: retrieval, answers, citations, latency; reports and a baseline gate",
        description="Ingest a golden set into a collection of its own, ask every question, score it.",
    )
    p.add_argument(
        "--set", action="append", metavar="NAME_OR_PATH", help="a shipped set or a path (repeatable)"
    )
    p.add_argument("--all", action="store_true", help="every shipped set except the CI subset")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions of each set")
    p.add_argument(
        "--url", help="evaluate a running service (e.g. http://127.0.0.1:8000) instead of in-process"
    )
    p.add_argument("--api-key", help="the service's API key, with --url")
    p.add_argument("--api-key-file", help="a file holding the service's API key, with --url")
    p.add_argument(
        "--config", metavar="K=V,...", help="setting overrides, e.g. reranker=none,chunk_tokens=300"
    )
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="run two configurations side by side, e.g. retrieval=hybrid retrieval=dense",
    )
    p.add_argument("--baseline", metavar="FILE_OR_DIR", help="exit 1 when a headline metric regresses")
    p.add_argument("--save-baseline", metavar="DIR", help="also write each summary as DIR/<set>.json")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="report folder (default: eval/reports)")
    p.add_argument(
        "--embedding-cache",
        type=Path,
        metavar="FILE",
        help="remember embeddings by model and exact text across runs (ablations re-embed less)",
    )
    p.add_argument("--json", action="store_true", help="print the headline metrics as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--from-feedback",
        metavar="OUT.jsonl",
        help="export answers users marked up or down (the service's data dir) as golden-set candidates",
    )
    p.add_argument("--rating", choices=["up", "down"], help="with --from-feedback: only this rating")
