"""Re-index a collection with another embedding model, while it keeps answering.

The chunks are not read again from their files: each stored chunk is embedded anew, from the
text ingestion embedded (its context header and text, ``rag.index.store.embedded_text``), into
a new vector set, while queries and writes go on against the old one. Then the index catches up
with what was written meanwhile and switches the collection to the new vectors in one catalog
transaction (``DocumentStore.finish_reindex``); queries embedded just before the switch are still
served from the old vectors, which are deleted a moment later. A crash before the switch leaves
the old vectors serving and the partial set is dropped on the next open; a crash after it, the
new ones serving and the old set dropped on the next open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rag.embedder import Embedder
from rag.errors import NotFound
from rag.index.store import DocumentStore, document_chunk_ids, embedded_text
from rag.logs import log_event

__all__ = ["RETIRE_GRACE_S", "ReindexReport", "reindex"]

log = logging.getLogger(__name__)

RETIRE_GRACE_S = 2.0
"""How long replaced vectors stay readable after the switch, for queries (in any process)
embedded with the old model just before it."""

Progress = Callable[[int, int], None]
"""Told ``(chunks embedded, chunks in all)`` after every batch."""


@dataclass
class ReindexReport:
    collection: str
    previous: str
    model: str
    documents: int
    chunks: int
    over_token_limit: int
    """Chunks longer than the new model reads (it embeds their beginning only)."""
    switched: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reindex(
    store: DocumentStore,
    collection: str,
    embedder: Embedder,
    *,
    batch_chunks: int = 256,
    force: bool = False,
    grace_s: float = RETIRE_GRACE_S,
    progress: Progress | None = None,
) -> ReindexReport:
    """Embed ``collection``'s chunks with ``embedder`` and switch the collection to them.

    A collection already indexed with that model is left alone unless ``force``. Any failure
    before the switch drops what was built and leaves the collection as it was.
    """
    started = time.perf_counter()
    source = store.embedding(collection)
    if source is None:
        raise NotFound(f"collection {collection!r} has no documents to re-index")
    documents = store.active_documents(collection)
    if source.spec.matches(embedder.spec) and not force:
        return ReindexReport(
            collection,
            source.spec.describe(),
            embedder.spec.describe(),
            len(documents),
            sum(d.chunks for d in documents),
            0,
            False,
            round(time.perf_counter() - started, 3),
        )
    job = store.begin_reindex(collection, embedder.spec)
    over_limit = 0
    try:
        ids = [cid for d in documents for cid in document_chunk_ids(d)]
        done = 0
        for start in range(0, len(ids), batch_chunks):
            rows = store.read_chunks(job, ids[start : start + batch_chunks])
            texts = [embedded_text(text, meta) for _, text, meta in rows]
            over_limit += sum(n > embedder.max_tokens for n in embedder.count_tokens_batch(texts))
            store.put_reindexed(job, rows, embedder.embed(texts))
            done += len(rows)
            if progress is not None:
                progress(done, len(ids))
        retired = store.finish_reindex(job, embedder.embed)
    except BaseException:
        try:
            store.abandon_reindex(job)
        except Exception:  # the next open drops it
            log.warning("could not drop the vectors of an abandoned re-index", exc_info=True)
        raise
    if retired is not None:
        time.sleep(grace_s)
        store.drop_retired(retired)
    report = ReindexReport(
        collection,
        source.spec.describe(),
        embedder.spec.describe(),
        len(store.active_documents(collection)),
        sum(job.copied.values()),
        over_limit,
        True,
        round(time.perf_counter() - started, 3),
    )
    log_event(log, "re-index finished", **report.to_dict())
    return report
