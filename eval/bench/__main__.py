"""``make bench`` (``python -m eval.bench``): run the benchmark sections and write their figures as JSON.

Ratios are measured side by side in one run, because this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _sections(datasets: Path, quick: bool) -> dict[str, Callable[[dict[str, Any]], None]]:
    from eval.bench import ingestion

    sections: dict[str, Callable[[dict[str, Any]], None]] = {
        "lexical": lambda out: ingestion.lexical_latency(
            datasets, out, (2_000, 10_000) if quick else (10_000, 100_000)
        ),
        "ingestion": lambda out: ingestion.ingestion_throughput(
            datasets, out, ["AMCOR_2023Q2_10Q.pdf"] if quick else ["AMCOR_2023Q2_10Q.pdf", "3M_2018_10K.pdf"]
        ),
        "memory": lambda out: ingestion.peak_rss(datasets, out, *((5, 15) if quick else (30, 300))),
    }
    optional = {
        "ocr": ("eval.bench.ocr", "run_ocr_bench"),
        "query": ("eval.bench.query", "run_query_bench"),
        "gateway": ("eval.bench.gateway", "run_gateway_bench"),
        "api": ("eval.bench.server", "run_api_bench"),
        "ingestion_levers": ("eval.bench.levers", "lever_costs"),
        "parse_isolation": ("eval.bench.isolation", "isolation_cost"),
        "ocr_pool": ("eval.bench.ocr_pool", "run_ocr_pool_bench"),
        "embedding_backends": ("eval.bench.backends", "backend_throughput"),
        "page_render": ("eval.bench.pages", "run_page_render_bench"),
        "cluster": ("eval.bench.cluster", "run_cluster_bench"),
        "scale": ("eval.bench.scale", "run_scale_bench"),
    }
    for name, (module, func) in optional.items():
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError):
            continue
        sections[name] = _bind(fn, datasets, quick)
    return sections


def _bind(fn: Callable[..., None], datasets: Path, quick: bool) -> Callable[[dict[str, Any]], None]:
    import inspect

    params = inspect.signature(fn).parameters

    def run(out: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {}
        if "datasets" in params:
            kwargs["datasets"] = datasets
        if "quick" in params:
            kwargs["quick"] = quick
        fn(out, **kwargs)

    return run


def _cpu() -> dict[str, object]:
    """The processor, and whether it has the int8 dot-product instructions (VNNI) that decide
    how much faster int8 ONNX runs than fp32: hosts of this machine type differ."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu": platform.processor()}
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []
    )
    return {"cpu": model, "vnni": "avx512_vnni" in flags or "avx_vnni" in flags, "avx512": "avx512f" in flags}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m eval.bench", description="Run benchmarks and write JSON results."
    )
    parser.add_argument("--only", nargs="*", help="section names to run")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--datasets", default=str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--out", default=str(REPO / "bench-results"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sections = _sections(Path(args.datasets), args.quick)
    chosen = args.only or list(sections)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        if name not in sections:
            raise SystemExit(f"unknown section {name!r}; known: {', '.join(sections)}")
        result: dict[str, Any] = {
            "section": name,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), **_cpu()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "quick": args.quick,
        }
        started = time.perf_counter()
        sections[name](result)
        result["seconds"] = round(time.perf_counter() - started, 1)
        path = out_dir / f"{name}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
