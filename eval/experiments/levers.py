"""The evidence levers' ablation: one table from the ``rag eval`` runs of each lever.

``make ablation`` runs ``rag eval --config <lever>`` for every set and lever below that has no
report yet (each run is the product's own evaluation, its report written under
``bench-results/ablation/<set>-<lever>``), then reads the newest report of each and writes
``bench-results/levers.json`` and a Markdown table, with every figure's 95% bootstrap CI and a
verdict per lever and set: better, worse or unchanged beyond the CI of the baseline. The
scanned pages and their text-layer twins get the baseline and the shipped levers only: OCR'd
again for every collection, they cost most, and what they must show is the twins' gap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

COMMON = "reranker=none,answers=off"
OFF = (
    "tables=false,context_headers=off,named_document_boost=0,query_vocabulary=off,statement_boost=0,"
    "implied_statement_boost=0,query_fiscal_years=false"
)
LEVERS: dict[str, str] = {
    "base": OFF,
    "naming": f"{OFF},named_document_boost=1",
    "tables": f"{OFF},tables=true",
    "headers": f"{OFF},context_headers=lexical",
    "vocabulary": f"{OFF},query_vocabulary=finance",
    "statements": f"{OFF},statement_boost=1",
    "implied": f"{OFF},implied_statement_boost=2",
    "years": f"{OFF},query_fiscal_years=true",
    "shipped": (
        "tables=true,context_headers=lexical,named_document_boost=1,query_vocabulary=finance,statement_boost=1,"
        "implied_statement_boost=2,query_fiscal_years=true"
    ),
}
"""Each lever alone on the baseline, and the shipped combination (the defaults)."""
SHIPPED = LEVERS["shipped"]
BACKENDS: dict[str, str] = {
    "base": f"{SHIPPED},embedding_backend=torch",
    "onnx-int8": f"{SHIPPED},embedding_backend=onnx-int8",
    "onnx": f"{SHIPPED},embedding_backend=onnx",
}
"""The embedding backends on the shipped configuration; torch is the baseline, int8 (the candidate
for the default) runs first."""
METRICS = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10")
TWIN_SETS = frozenset({"financebench-scanned", "financebench-pages"})


def levers_for(name: str, variants: Mapping[str, str] = LEVERS) -> list[str]:
    """The twin sets (one change of format each) need only the baseline and the shipped levers."""
    return ["base", "shipped"] if variants is LEVERS and name in TWIN_SETS else list(variants)


def run_missing(
    reports: Path,
    sets: list[str],
    data_dir: Path,
    embedding_cache: Path | None,
    say: Any,
    variants: Mapping[str, str] = LEVERS,
) -> None:
    """``rag eval`` for each set and lever without a report (one process each, as an operator runs it)."""
    rag = Path(sys.executable).with_name("rag")
    for name in sets:
        for lever in levers_for(name, variants):
            folder = reports / f"{name}-{lever}"
            if _newest_report(folder) is not None:
                continue
            say(f"levers: {name} {lever}")
            command = [str(rag), "eval", "--set", name, "--config", f"{COMMON},{variants[lever]}"]
            command += ["--out", str(folder), "--json", "--quiet"]
            if embedding_cache is not None:
                command += ["--embedding-cache", str(embedding_cache)]
            env = os.environ | {"RAG_DATA_DIR": str(data_dir)}
            done = subprocess.run(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"rag eval failed on {name} {lever}: {done.stderr.strip()[-2000:]}")


def _newest_report(folder: Path) -> dict[str, Any] | None:
    reports = sorted(folder.glob("*.json"))
    return json.loads(reports[-1].read_text(encoding="utf-8")) if reports else None


def _level(report: Mapping[str, Any]) -> str:
    """Page-level figures for sets whose evidence names pages; document-level otherwise."""
    page = report["headline"].get("page_hit@5")
    return "page" if page is not None and page.get("value") is not None else "document"


def _figures(report: Mapping[str, Any], level: str) -> dict[str, dict[str, float | None]]:
    prefix = "page_" if level == "page" else ""
    return {m: report["headline"][prefix + m] for m in METRICS}


def _verdict(lever: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    """Beyond the baseline's CI on hit@5 or MRR@10, either way; else unchanged."""
    out = "unchanged"
    for metric in ("hit@5", "mrr@10"):
        value, low, high = lever[metric]["value"], base[metric]["low"], base[metric]["high"]
        if value is None or low is None or high is None:
            continue
        if value < low:
            return "worse"
        if value > high:
            out = "better"
    return out


def collect(reports: Path, sets: list[str], variants: Mapping[str, str] = LEVERS) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name in sets:
        runs = {lever: _newest_report(reports / f"{name}-{lever}") for lever in levers_for(name, variants)}
        base = runs.get("base")
        if base is None:
            continue
        level = _level(base)
        base_figures = _figures(base, level)
        rows = {}
        for lever, report in runs.items():
            if report is None:
                continue
            figures = _figures(report, level)
            rows[lever] = {
                "config": report["config"].get("label"),
                "figures": figures,
                "document_hit@5": report["headline"]["hit@5"],
                "verdict": "-" if lever == "base" else _verdict(figures, base_figures),
                "delta_vs_base": {m: _delta(figures[m], base_figures[m]) for m in ("mrr@10", "ndcg@10")},
                "ingest_s": report["ops"].get("seconds", {}).get("ingest"),
            }
        table[name] = {"level": level, "questions": base["counts"]["questions"], "levers": rows}
    return table


def _delta(estimate: Mapping[str, Any], base: Mapping[str, Any]) -> float | None:
    if estimate.get("value") is None or base.get("value") is None:
        return None
    return round(float(estimate["value"]) - float(base["value"]), 4)


def markdown(table: Mapping[str, Any]) -> str:
    lines = []
    for name, entry in table.items():
        lines += [
            f"#### {name} ({entry['questions']} questions, {entry['level']}-level)",
            "",
            "| lever | hit@1 | hit@5 | hit@10 | MRR@10 | nDCG@10 | vs baseline |",
            "|---|---|---|---|---|---|---|",
        ]
        for lever, row in entry["levers"].items():
            cells = [_cell(row["figures"][m]) for m in METRICS]
            lines.append(f"| {lever} | {' | '.join(cells)} | {row['verdict']} |")
        lines.append("")
    return "\n".join(lines)


def _cell(estimate: Mapping[str, Any]) -> str:
    if estimate.get("value") is None:
        return "-"
    return f"{estimate['value']:.3f} [{estimate['low']:.2f}, {estimate['high']:.2f}]"


def run_levers(
    reports: Path,
    sets: list[str],
    out: Path,
    data_dir: Path,
    embedding_cache: Path | None,
    say: Any,
    variants: Mapping[str, str] = LEVERS,
    name: str = "levers",
    run: bool = True,
) -> dict[str, Any]:
    if run:
        run_missing(reports, sets, data_dir, embedding_cache, say, variants)
    table = collect(reports, sets, variants)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(markdown(table), encoding="utf-8")
    return {"what": __doc__.split("\n\n")[0] if __doc__ else "", "levers": dict(variants), "sets": table}
