"""Reports of an evaluation: JSON (the record), Markdown (for reviews), HTML with charts (opens
offline: inline SVG, no scripts, no CDN), a one-screen terminal summary and the baseline gate.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from eval.metrics.summary import EvalSummary, MetricValue
from rag.errors import InvalidRequest

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
DISTRIBUTIONS = ("f1", "groundedness", "ndcg@10", "page_citation_recall", "citation_recall")


@dataclass(frozen=True, slots=True)
class ReportPaths:
    json: Path
    markdown: Path
    html: Path


@dataclass(frozen=True, slots=True)
class Regression:
    """A headline metric that fell below the baseline by more than the confidence interval allows."""

    metric: str
    baseline: float
    current: float | None
    allowed_drop: float

    def describe(self) -> str:
        if self.current is None:
            return f"{self.metric}: missing (baseline {self.baseline:.3f})"
        return (
            f"{self.metric}: {self.current:.3f} < baseline {self.baseline:.3f} "
            f"(drop {self.baseline - self.current:.3f} > allowed {self.allowed_drop:.3f})"
        )


# --------------------------------------------------------------------------- loading and the gate


def load_report(path: Path) -> EvalSummary:
    """A report's JSON back as a summary (for baselines and comparisons)."""
    try:
        return EvalSummary.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise InvalidRequest(f"report {path} does not exist") from exc
    except (OSError, ValidationError, ValueError) as exc:
        raise InvalidRequest(f"{path} is not an evaluation report: {exc.__class__.__name__}") from exc


def _as_summary(value: EvalSummary | Mapping[str, Any]) -> EvalSummary:
    if isinstance(value, EvalSummary):
        return value
    try:
        return EvalSummary.model_validate(value)
    except ValidationError as exc:
        raise InvalidRequest("not an evaluation report") from exc


def compare_to_baseline(
    current: EvalSummary | Mapping[str, Any],
    baseline: EvalSummary | Mapping[str, Any],
    *,
    metrics: Sequence[str] | None = None,
) -> list[Regression]:
    """Regressions of the headline metrics (all higher-is-better).

    A metric regresses when it falls below the baseline by more than the wider of the baseline's
    lower and the current run's upper half-interval, i.e. when the drop is outside what resampling
    the same questions would explain. A baseline metric the current run lacks is a regression too.
    """
    cur, base = _as_summary(current), _as_summary(baseline)
    out: list[Regression] = []
    for name in metrics or sorted(base.headline):
        if name not in base.headline:
            raise InvalidRequest(f"baseline has no headline metric {name!r}")
        b = base.headline[name]
        c = cur.headline.get(name)
        if c is None:
            out.append(Regression(name, b.value, None, 0.0))
            continue
        allowed = max(
            b.value - (b.low if b.low is not None else b.value),
            (c.high if c.high is not None else c.value) - c.value,
        )
        if c.value < b.value - allowed - 1e-12:
            out.append(Regression(name, b.value, c.value, allowed))
    return out


def headline_values(summary: EvalSummary) -> dict[str, float]:
    """The headline metrics as one flat JSON object (``rag eval --json``)."""
    return {name: round(m.value, 6) for name, m in summary.headline.items()}


# --------------------------------------------------------------------------- text renderings


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _ci(m: MetricValue) -> str:
    return f"[{_fmt(m.low)}, {_fmt(m.high)}]" if m.low is not None and m.high is not None else ""


def _latency_line(summary: EvalSummary) -> str:
    stages = summary.ops.get("latency_ms") or {}
    parts = [f"{stage} {_fmt(v.get('p50'), 0)}/{_fmt(v.get('p95'), 0)}" for stage, v in stages.items()]
    return "latency p50/p95 ms: " + (" · ".join(parts) if parts else "-")


def _counts(summary: EvalSummary) -> str:
    c = summary.counts
    return (
        f"{c.get('questions', 0)} questions ({c.get('answerable', 0)} answerable, "
        f"{c.get('unanswerable', 0)} unanswerable) · {c.get('documents', 0)} documents"
        f" · {c.get('errors', 0)} errors"
    )


def format_summary(summary: EvalSummary) -> str:
    """A one-screen summary for the terminal."""
    lines = [
        f"{summary.set_name} ({summary.kind}): {_counts(summary)}",
    ]
    for name, m in summary.headline.items():
        lines.append(f"  {name:<24}{_fmt(m.value):>7}  {_ci(m)}")
    lines.append(_latency_line(summary))
    o = summary.ops
    providers = ", ".join(f"{k} {v}" for k, v in (o.get("providers") or {}).items()) or "-"
    lines.append(
        f"tokens/answer in {_fmt(o.get('input_tokens_mean'), 0)} out {_fmt(o.get('output_tokens_mean'), 0)}"
        f" · cost/100 answers {_fmt(o.get('cost_per_100'), 4)}"
        f" · cache hits {_fmt(o.get('cache_hit_rate'), 2)}"
        f" · providers: {providers}"
    )
    return "\n".join(lines)


def _ops_rows(summary: EvalSummary) -> list[list[str]]:
    o = summary.ops
    providers = ", ".join(f"{k}: {v}" for k, v in (o.get("providers") or {}).items()) or "-"
    return [
        ["input tokens / answer", _fmt(o.get("input_tokens_mean"), 1)],
        ["output tokens / answer", _fmt(o.get("output_tokens_mean"), 1)],
        ["cost / 100 answers", _fmt(o.get("cost_per_100"), 4)],
        ["cache hit rate", _fmt(o.get("cache_hit_rate"))],
        ["providers", providers],
    ]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def to_markdown(summary: EvalSummary) -> str:
    parts = [
        f"# Evaluation: {summary.set_name}",
        "",
        f"{summary.created_at} · {summary.kind} · {_counts(summary)}",
        "",
        "## Headline (95% bootstrap CI)",
        "",
        _md_table(
            ["metric", "value", "95% CI", "n"],
            [[k, _fmt(m.value), _ci(m), str(m.n)] for k, m in summary.headline.items()],
        ),
    ]
    if summary.answers:
        parts += [
            "",
            "## Answers",
            "",
            _md_table(["metric", "value"], [[k, _fmt(v)] for k, v in summary.answers.items()]),
        ]
    for level, curves in summary.retrieval_at_k.items():
        ks = list(next(iter(curves.values())).keys())
        parts += [
            "",
            f"## Retrieval at k ({level} level)",
            "",
            _md_table(
                ["metric", *[f"@{k}" for k in ks]],
                [[n, *[_fmt(v[k]) for k in ks]] for n, v in curves.items()],
            ),
        ]
    stages = summary.ops.get("latency_ms") or {}
    if stages:
        parts += [
            "",
            "## Latency per stage (ms)",
            "",
            _md_table(
                ["stage", "p50", "p95", "mean", "n"],
                [
                    [
                        s,
                        _fmt(v.get("p50"), 1),
                        _fmt(v.get("p95"), 1),
                        _fmt(v.get("mean"), 1),
                        _fmt(v.get("n"), 0),
                    ]
                    for s, v in stages.items()
                ],
            ),
        ]
    parts += [
        "",
        "## Operations",
        "",
        _md_table(
            ["figure", "value"],
            _ops_rows(summary),
        ),
    ]
    if summary.config:
        parts += [
            "",
            "## Configuration",
            "",
            "```json",
            json.dumps(summary.config, indent=1, sort_keys=True, default=str),
            "```",
        ]
    return "\n".join(parts) + "\n"


def comparison_markdown(a: EvalSummary, b: EvalSummary, labels: tuple[str, str] = ("A", "B")) -> str:
    """Two configurations on the same set, side by side; ``overlap`` says whether the CIs overlap."""
    rows = []
    for name in sorted(set(a.headline) | set(b.headline)):
        ma, mb = a.headline.get(name), b.headline.get(name)
        delta = _fmt(mb.value - ma.value) if ma and mb else "-"
        overlap = "-"
        if ma and mb and None not in (ma.low, ma.high, mb.low, mb.high):
            overlap = "yes" if ma.low <= mb.high and mb.low <= ma.high else "no"  # type: ignore[operator]
        rows.append([name, _fmt(ma.value) if ma else "-", _fmt(mb.value) if mb else "-", delta, overlap])
    return (
        _md_table(["metric", labels[0], labels[1], f"{labels[1]} - {labels[0]}", "CIs overlap"], rows) + "\n"
    )


# --------------------------------------------------------------------------- SVG charts


def _el(tag: str, text: str | None = None, **attrs: object) -> str:
    """One SVG element; attribute names use ``_`` for ``-`` and numbers are rounded."""
    rendered = " ".join(
        f'{k.rstrip("_").replace("_", "-")}="{(f"{v:.1f}" if isinstance(v, float) else html.escape(str(v)))}"'
        for k, v in attrs.items()
    )
    return f"<{tag} {rendered}/>" if text is None else f"<{tag} {rendered}>{text}</{tag}>"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    header = _el("text", html.escape(title), x=width / 2, y=16, text_anchor="middle", font_weight="bold")
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">'
        + header
        + "".join(body)
        + "</svg></figure>"
    )


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        out.append(_el("rect", x=x, y=y + i * 16, width=10, height=10, fill=color))
        out.append(_el("text", html.escape(name), x=x + 14, y=y + i * 16 + 9, font_size=11))
    return out


def bar_chart(
    title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]], unit: str = ""
) -> str:
    """Horizontal grouped bars: one group per category, one bar per series."""
    row_h = 14 * max(len(series), 1) + 8
    left, width = 130, 620
    height = 40 + row_h * len(categories) + 20
    top = max([v for vals in series.values() for v in vals] or [1.0]) or 1.0
    plot_w = width - left - 140
    body = []
    for ci, cat in enumerate(categories):
        y0 = 30 + ci * row_h
        body.append(
            _el("text", html.escape(cat), x=left - 6, y=y0 + row_h / 2, text_anchor="end", font_size=11)
        )
        for si, values in enumerate(series.values()):
            v, y = values[ci], y0 + 4 + si * 14
            w = plot_w * v / top
            body.append(_el("rect", x=left, y=y, width=w, height=12, fill=PALETTE[si % len(PALETTE)]))
            body.append(_el("text", f"{v:.1f}{unit}", x=left + w + 4, y=y + 10, font_size=10))
    body += _legend(list(series), width - 120, 30)
    return _svg(width, height, body, title)


def histogram(title: str, values: Sequence[float], bins: int = 10) -> str:
    """Distribution of per-question scores in [0, 1]."""
    counts = [0] * bins
    for v in values:
        counts[min(int(max(v, 0.0) * bins), bins - 1)] += 1
    width, height, left, bottom = 360, 220, 36, 190
    plot_w, plot_h = width - left - 10, bottom - 30
    top = max(counts) or 1
    bar_w = plot_w / bins
    body = [_el("line", x1=left, y1=bottom, x2=width - 10, y2=bottom, stroke="#444")]
    for i, count in enumerate(counts):
        h, x = plot_h * count / top, left + i * bar_w
        tip = _el("title", f"{i / bins:.1f}-{(i + 1) / bins:.1f}: {count}")
        body.append(
            _el("rect", tip, x=x + 1, y=bottom - h, width=bar_w - 2, height=float(h), fill=PALETTE[0])
        )
        if count:
            body.append(
                _el("text", str(count), x=x + bar_w / 2, y=bottom - h - 3, text_anchor="middle", font_size=9)
            )
    for i in range(0, bins + 1, 2):
        body.append(
            _el(
                "text",
                f"{i / bins:.1f}",
                x=left + i * bar_w,
                y=bottom + 14,
                text_anchor="middle",
                font_size=10,
            )
        )
    return _svg(width, height, body, f"{title} (n={len(values)})")


def line_chart(title: str, xs: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Metrics against k (categorical x axis, y in [0, 1])."""
    width, height, left, bottom = 520, 260, 40, 220
    plot_w, plot_h = width - left - 130, bottom - 34
    step = plot_w / max(len(xs) - 1, 1)
    body = [
        _el("line", x1=left, y1=bottom, x2=left + plot_w, y2=bottom, stroke="#444"),
        _el("line", x1=left, y1=bottom, x2=left, y2=bottom - plot_h, stroke="#444"),
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = bottom - plot_h * tick
        body.append(_el("text", f"{tick:.2f}", x=left - 4, y=y + 3, text_anchor="end", font_size=10))
        body.append(_el("line", x1=left, y1=y, x2=left + plot_w, y2=y, stroke="#ddd"))
    for i, x in enumerate(xs):
        body.append(
            _el("text", html.escape(x), x=left + i * step, y=bottom + 14, text_anchor="middle", font_size=10)
        )
    for si, values in enumerate(series.values()):
        color = PALETTE[si % len(PALETTE)]
        points = " ".join(f"{left + i * step:.1f},{bottom - plot_h * v:.1f}" for i, v in enumerate(values))
        body.append(_el("polyline", fill="none", stroke=color, stroke_width=2, points=points))
        body += [
            _el(
                "circle",
                _el("title", f"{v:.3f}"),
                cx=left + i * step,
                cy=bottom - plot_h * v,
                r=3,
                fill=color,
            )
            for i, v in enumerate(values)
        ]
    body += _legend(list(series), left + plot_w + 14, 34)
    return _svg(width, height, body, title)


def _charts(summary: EvalSummary) -> list[str]:
    charts = []
    stages = summary.ops.get("latency_ms") or {}
    if stages:
        names = list(stages)
        p50 = [stages[s].get("p50", 0.0) for s in names]
        p95 = [stages[s].get("p95", 0.0) for s in names]
        charts.append(bar_chart("Latency per stage (ms)", names, {"p50": p50, "p95": p95}))
    for level, curves in summary.retrieval_at_k.items():
        ks = list(next(iter(curves.values())).keys())
        series = {n: [v[k] for k in ks] for n, v in curves.items()}
        charts.append(line_chart(f"Retrieval against k ({level} level)", [f"@{k}" for k in ks], series))
    for name in DISTRIBUTIONS:
        values = [v for q in summary.questions if (v := q.scores.get(name)) is not None]
        if values:
            charts.append(histogram(f"Distribution of {name}", values))
    return charts


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 18px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}figure{display:inline-block;margin:8px;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums}details{margin-top:16px}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(summary: EvalSummary) -> str:
    sections = [
        f"<h1>Evaluation: {html.escape(summary.set_name)}</h1>",
        f"<p>{html.escape(f'{summary.created_at} · {summary.kind} · {_counts(summary)}')}</p>",
        "<h2>Headline (95% bootstrap CI)</h2>",
        _html_table(
            ["metric", "value", "95% CI", "n"],
            [[k, _fmt(m.value), _ci(m), str(m.n)] for k, m in summary.headline.items()],
        ),
    ]
    if summary.answers:
        sections += [
            "<h2>Answers</h2>",
            _html_table(["metric", "value"], [[k, _fmt(v)] for k, v in summary.answers.items()]),
        ]
    sections += ["<h2>Charts</h2>", *_charts(summary)]
    sections += [
        "<h2>Operations</h2>",
        _html_table(
            ["figure", "value"],
            _ops_rows(summary),
        ),
    ]
    score_names = sorted({k for q in summary.questions for k in q.scores})
    rows = [
        [
            q.id,
            q.question,
            ("[abstained] " if q.abstained else "") + (q.error or q.answer)[:300],
            *[_fmt(q.scores.get(k)) for k in score_names],
        ]
        for q in summary.questions
    ]
    table = _html_table(["id", "question", "answer", *score_names], rows)
    sections.append(f"<details><summary>Every question ({len(rows)})</summary>{table}</details>")
    if summary.config:
        config = json.dumps(summary.config, indent=1, sort_keys=True, default=str)
        sections.append(f"<h2>Configuration</h2><pre>{html.escape(config)}</pre>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Evaluation: {html.escape(summary.set_name)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


# --------------------------------------------------------------------------- writing


def write_report(
    summary: EvalSummary | Mapping[str, Any],
    out_dir: Path,
    set_name: str | None = None,
    *,
    now: datetime | None = None,
) -> ReportPaths:
    """Write ``<set>-<timestamp>.json``, ``.md`` and ``.html`` into ``out_dir``; never overwrites."""
    report = _as_summary(summary)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", set_name or report.set_name).strip("-") or "set"
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem, n = f"{name}-{stamp}", 1
    while any((out_dir / f"{stem}{ext}").exists() for ext in (".json", ".md", ".html")):
        n += 1
        stem = f"{name}-{stamp}-{n}"
    paths = ReportPaths(out_dir / f"{stem}.json", out_dir / f"{stem}.md", out_dir / f"{stem}.html")
    paths.json.write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    paths.markdown.write_text(to_markdown(report), encoding="utf-8")
    paths.html.write_text(to_html(report), encoding="utf-8")
    return paths
