"""``rag worker``: a process that only runs ingestion jobs, from the queue every process shares.

Run any number of them, on any machines, beside API replicas started with
``RAG_RUN_JOBS=false``; they share the queue through ``RAG_DATABASE_URL``, the vectors through
``RAG_CHROMA_URL`` and the uploaded bytes through ``RAG_BLOB_URL``. Each keeps its own data
directory. A worker that dies leaves its jobs to the others once their leases run out.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from types import FrameType

from cli.common import EXIT_FAILED, EXIT_OK, Subparsers, add_command
from rag.settings import Settings


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from rag.logs import log_event
    from service.runtime import Runtime

    updates: dict[str, object] = {"run_jobs": True}
    if args.threads:
        updates["workers"] = args.threads
    settings = settings.model_copy(update=updates)
    if settings.database_url is None:
        print(
            "rag worker: RAG_DATABASE_URL is not set, so no other process can queue jobs for this"
            " worker; `rag serve` runs jobs itself on the embedded default",
            flush=True,
        )
        return EXIT_FAILED
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.perf_counter()
    with Runtime(settings, writer=True) as runtime:
        runtime.index  # noqa: B018 - opens the index (this process's lexical side catches up)
        runtime.ingestion.parsers.warm()
        runtime.embedder.embed_query("warm up")
        recovered = runtime.jobs.start()
        log_event(
            logging.getLogger("rag.worker"),
            "worker ready",
            worker=runtime.jobs.worker_id,
            threads=settings.workers,
            seconds=round(time.perf_counter() - started, 2),
            **recovered,
        )
        print(
            f"rag worker: {runtime.jobs.worker_id} running jobs with {settings.workers} thread(s)"
            f" (data in {settings.data_dir})",
            flush=True,
        )
        stop.wait()
        runtime.jobs.stop()
    return EXIT_OK


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "worker",
        cmd_worker,
        help="run ingestion jobs from the shared queue (RAG_DATABASE_URL) until stopped",
    )
    p.add_argument("--threads", type=int, help="jobs run at once (default RAG_WORKERS)")
