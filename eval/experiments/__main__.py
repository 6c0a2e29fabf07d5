"""``python -m eval.experiments retrieval|floor|context|levers|backends|followups``: run one experiment
and write its JSON."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.experiments.common import DEFAULT_DATA, DEFAULT_OUT, write
from eval.golden import DEFAULT_DATASETS_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.experiments",
        description="The README's retrieval, abstention and context-efficiency figures, as JSON under bench-results/.",
    )
    parser.add_argument(
        "experiment", choices=("retrieval", "floor", "context", "levers", "backends", "followups")
    )
    parser.add_argument("--datasets", default=str(DEFAULT_DATASETS_DIR), help="the shared datasets folder")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="index folder (reused between runs)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where the JSON goes")
    parser.add_argument(
        "--sample", type=int, default=None, help="questions to use (default: retrieval all, floor 2000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-signals", action="store_true", help="floor: analyse the signals saved by the last run"
    )
    parser.add_argument(
        "--fusion", choices=("rrf", "weighted"), help="floor: the fusion whose sources the answerer sees"
    )
    parser.add_argument(
        "--sets",
        default="financebench,docugami-10q-all,squad2,clapnq,covidqa",
        help="context, levers: shipped sets, comma-separated (ingested into --data-dir as `rag eval` does)",
    )
    parser.add_argument(
        "--embedding-cache",
        default=None,
        help="context, levers: vectors remembered by model and exact text (`rag eval --embedding-cache`)",
    )
    parser.add_argument(
        "--reports",
        default=str(DEFAULT_OUT / "ablation"),
        help="levers, backends: the folder of `rag eval` reports (`make ablation` writes the levers')",
    )
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="levers, backends: build the table from the reports there are, running nothing",
    )
    parser.add_argument(
        "--multiturn",
        default=None,
        help="followups: the multi-turn set (default: data/multiturn/followups.json)",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from rag.logs import configure_logging

    configure_logging("WARNING")
    if args.experiment == "floor" and args.sample is None:
        args.sample = 2000
    started = time.perf_counter()
    if args.experiment == "retrieval":
        from eval.experiments.retrieval import run_retrieval

        payload = run_retrieval(args)
    elif args.experiment in ("levers", "backends"):
        from eval.experiments.common import progress
        from eval.experiments.levers import BACKENDS, LEVERS, run_levers

        cache = Path(args.embedding_cache) if args.embedding_cache else None
        sets = [s for s in args.sets.split(",") if s]
        variants = LEVERS if args.experiment == "levers" else BACKENDS
        payload = run_levers(
            Path(args.reports),
            sets,
            Path(args.out),
            Path(args.data_dir),
            cache,
            progress(args),
            variants,
            args.experiment,
            run=not args.collect_only,
        )
    elif args.experiment == "followups":
        from eval.experiments.followups import run_followups

        payload = run_followups(args)
    elif args.experiment == "context":
        from eval.experiments.common import progress
        from eval.experiments.context import run_context

        payload = run_context(args, [s for s in args.sets.split(",") if s], progress(args))
    else:
        from eval.experiments.floor import run_floor

        payload = run_floor(args)
    payload["wall_s"] = round(time.perf_counter() - started, 1)
    path = write(Path(args.out), args.experiment, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
