"""The document catalog: which documents exist, in which state, in which collection.

It is the switch that makes a new version visible: chunks are written to Chroma first,
then one SQLite transaction marks the new document active and the old version gone.
Readers only trust chunks of active documents, so they never see half a write.

It also records, per collection, the embedding model its vectors were made with and the
vector-store collection ("physical" name) that holds them, and is the switch of a re-index the
same way: the new vectors are built under another physical name (a ``building`` vector set),
then one transaction points the collection at them and marks the old ones ``retired``, for
deletion. The tables are created on open, so an older catalog gains them (its collections
are recorded by the document store when it opens: ``DocumentStore.recover``).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.db import Connection, Database, Migration, Row, Store, create_tables, equal_to
from rag.errors import JobCancelled
from rag.layout import PageLayout
from rag.types import Document, PageRecord
from rag.vectors import EmbeddingSpec

__all__ = [
    "ACTIVE",
    "BUILDING",
    "RETIRED",
    "WRITING",
    "Catalog",
    "CollectionEmbedding",
    "VectorSet",
    "discard_unfinished",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    pages INTEGER NOT NULL DEFAULT 0,
    ocr_pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS documents_by_collection ON documents(collection, state);
CREATE INDEX IF NOT EXISTS documents_by_name ON documents(collection, name, state);
CREATE TABLE IF NOT EXISTS generations (
    collection TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS collection_embeddings (
    collection TEXT PRIMARY KEY,
    physical TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    dim INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    document_id TEXT NOT NULL,
    page_no INTEGER NOT NULL,
    text_offset INTEGER NOT NULL,
    source TEXT NOT NULL,
    text BLOB NOT NULL,
    width REAL,
    height REAL,
    spans BLOB,
    boxes BLOB,
    PRIMARY KEY (document_id, page_no)
);
CREATE TABLE IF NOT EXISTS vector_sets (
    physical TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    state TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    dim INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
"""

ACTIVE = "active"
WRITING = "writing"
BUILDING = "building"
"""A vector set a re-index is filling: no reader uses it; left over after a crash, it is dropped."""
RETIRED = "retired"
"""A vector set a re-index replaced: read only by queries embedded before the switch, then dropped."""


@dataclass(frozen=True, slots=True)
class CollectionEmbedding:
    """A collection's embedding model and the vector-store collection that holds its vectors."""

    collection: str
    physical: str
    spec: EmbeddingSpec


@dataclass(frozen=True, slots=True)
class VectorSet:
    """Vectors of a collection that are not (or no longer) the ones it serves."""

    physical: str
    collection: str
    state: str
    spec: EmbeddingSpec


def _spec(row: Row) -> EmbeddingSpec:
    return EmbeddingSpec(row["model"], row["backend"], int(row["dim"]))


def _row_to_document(row: Row) -> Document:
    return Document(
        id=row["id"],
        name=row["name"],
        collection=row["collection"],
        content_sha256=row["content_sha256"],
        kind=row["kind"],
        size_bytes=row["size_bytes"],
        pages=row["pages"],
        ocr_pages=row["ocr_pages"],
        chunks=row["chunks"],
        state=row["state"],
        created_at=row["created_at"],
        metadata=json.loads(row["metadata"]),
    )


def _page_row(doc_id: str, page: PageRecord) -> tuple[Any, ...]:
    layout = page.layout
    spans, boxes = layout.to_blobs() if layout is not None else (None, None)
    return (
        doc_id,
        page.page_no,
        page.text_offset,
        page.source,
        zlib.compress(page.text.encode("utf-8"), 6),
        layout.width if layout is not None else None,
        layout.height if layout is not None else None,
        spans,
        boxes,
    )


def _row_to_page(row: Row) -> PageRecord:
    layout = None
    if row["spans"] is not None:
        layout = PageLayout.from_blobs(row["width"], row["height"], row["spans"], row["boxes"])
    return PageRecord(
        page_no=row["page_no"],
        text_offset=row["text_offset"],
        text=zlib.decompress(row["text"]).decode("utf-8"),
        source=row["source"],
        layout=layout,
    )


class Catalog(Store):
    """The catalog on SQLite (one process's threads) or PostgreSQL (every process)."""

    migrations = (
        Migration(
            1, "documents, generations, collection embeddings, pages, vector sets", create_tables(_SCHEMA)
        ),
    )

    def __init__(self, source: Path | Database, *, migrate_now: bool = True) -> None:
        super().__init__(source, migrate_now=migrate_now)

    # --- reads ------------------------------------------------------------------

    def get(self, doc_id: str) -> Document | None:
        with self.read() as conn:
            row = conn.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return _row_to_document(row) if row else None

    def documents(self, collection: str | None = None, state: str | None = ACTIVE) -> list[Document]:
        where, args = equal_to(collection=collection, state=state)
        with self.read() as conn:
            rows = conn.execute(
                f"SELECT * FROM documents WHERE 1=1{where} ORDER BY created_at, id", args
            ).fetchall()
        return [_row_to_document(r) for r in rows]

    def collections(self) -> list[str]:
        with self.read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT collection FROM documents UNION SELECT collection FROM generations"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def active_ids(self, collection: str) -> set[str]:
        with self.read() as conn:
            rows = conn.execute(
                "SELECT id FROM documents WHERE collection = ? AND state = ?", (collection, ACTIVE)
            ).fetchall()
        return {r[0] for r in rows}

    def active_chunk_total(self, collection: str) -> int:
        with self.read() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(chunks), 0) FROM documents WHERE collection = ? AND state = ?",
                (collection, ACTIVE),
            ).fetchone()
        return int(row[0])

    def generation(self, collection: str) -> int:
        with self.read() as conn:
            row = conn.execute(
                "SELECT generation FROM generations WHERE collection = ?", (collection,)
            ).fetchone()
        return int(row[0]) if row else 0

    def matching_ids(self, collection: str, filters: dict[str, Any]) -> set[str]:
        """Active documents whose metadata equals every filter (``document_id`` may be a list)."""
        ids = self.active_ids(collection)
        wanted = filters.get("document_id")
        if wanted is not None:
            ids &= set(wanted) if isinstance(wanted, list | tuple | set) else {str(wanted)}
        meta_filters = {k: v for k, v in filters.items() if k != "document_id"}
        if not meta_filters:
            return ids
        kept = set()
        for doc in self.documents(collection):
            if doc.id in ids and all(_matches(doc.metadata.get(k), v) for k, v in meta_filters.items()):
                kept.add(doc.id)
        return kept

    def page(self, doc_id: str, page_no: int) -> PageRecord | None:
        """One page's text and word boxes, as ingestion recorded them."""
        with self.read() as conn:
            row = conn.execute(
                "SELECT * FROM pages WHERE document_id = ? AND page_no = ?", (doc_id, page_no)
            ).fetchone()
        return _row_to_page(row) if row else None

    # --- writes -----------------------------------------------------------------

    def begin_write(self, document: Document, pages: Sequence[PageRecord] = ()) -> None:
        """Note ``document`` as being written, with its pages (replacing any of an unfinished write)."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute("DELETE FROM documents WHERE id = ? AND state != ?", (document.id, ACTIVE))
            conn.execute("DELETE FROM pages WHERE document_id = ?", (document.id,))
            _insert_pages(conn, document.id, pages)
            conn.execute(
                "INSERT INTO documents (id, collection, name, content_sha256, kind, size_bytes, pages,"
                " ocr_pages, chunks, state, created_at, updated_at, metadata)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    document.id,
                    document.collection,
                    document.name,
                    document.content_sha256,
                    document.kind,
                    document.size_bytes,
                    document.pages,
                    document.ocr_pages,
                    document.chunks,
                    WRITING,
                    document.created_at or now,
                    now,
                    json.dumps(document.metadata, sort_keys=True),
                ),
            )

    def touch_write(self, doc_id: str) -> bool:
        """A long write's heartbeat: ``False`` when its row is gone (the document was deleted).

        Shared engines take a ``writing`` row untouched for long as a dead process's."""
        with self.transaction() as conn:
            return bool(
                conn.execute(
                    "UPDATE documents SET updated_at = ? WHERE id = ? AND state = ?",
                    (time.time(), doc_id, WRITING),
                ).rowcount
            )

    def activate(
        self, document: Document, pages: Sequence[PageRecord] | None = None
    ) -> tuple[list[str], int]:
        """Make ``document`` the one active version of its name; return (replaced ids, generation).

        Its page count, chunks and metadata are taken as they are now; ``pages`` (records) given
        here replace any given to :meth:`begin_write`, in the same transaction."""
        with self.transaction() as conn:
            replaced = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM documents WHERE collection = ? AND name = ? AND state = ? AND id != ?",
                    (document.collection, document.name, ACTIVE, document.id),
                )
            ]
            conn.executemany("DELETE FROM documents WHERE id = ?", [(d,) for d in replaced])
            conn.executemany("DELETE FROM pages WHERE document_id = ?", [(d,) for d in replaced])
            switched = conn.execute(
                "UPDATE documents SET state = ?, pages = ?, ocr_pages = ?, chunks = ?, updated_at = ?,"
                " metadata = ? WHERE id = ? AND state = ?",
                (
                    ACTIVE,
                    document.pages,
                    document.ocr_pages,
                    document.chunks,
                    time.time(),
                    json.dumps(document.metadata, sort_keys=True),
                    document.id,
                    WRITING,
                ),
            ).rowcount
            if switched != 1:  # deleted (by another process) while it was being written
                raise JobCancelled("the document was deleted while it was being ingested")
            if pages is not None:
                conn.execute("DELETE FROM pages WHERE document_id = ?", (document.id,))
                _insert_pages(conn, document.id, pages)
            generation = self._bump(conn, document.collection)
        document.state = ACTIVE
        return replaced, generation

    def remove(self, doc_id: str) -> tuple[str, int] | None:
        """Forget a document; return (collection, new generation) or None if unknown."""
        with self.transaction() as conn:
            row = conn.execute("SELECT collection FROM documents WHERE id = ?", (doc_id,)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            conn.execute("DELETE FROM pages WHERE document_id = ?", (doc_id,))
            return row[0], self._bump(conn, row[0])

    def unfinished(self, updated_before: float | None = None) -> list[Document]:
        """Documents being written (only those untouched since ``updated_before`` when given)."""
        if updated_before is None:
            return self.documents(state=WRITING)
        with self.read() as conn:
            rows = conn.execute(
                "SELECT * FROM documents WHERE state = ? AND updated_at < ? ORDER BY created_at, id",
                (WRITING, updated_before),
            ).fetchall()
        return [_row_to_document(r) for r in rows]

    # --- embedding models and vector sets ---------------------------------------------

    def embedding(self, collection: str) -> CollectionEmbedding | None:
        """The collection's model and physical vector collection; ``None`` if never recorded."""
        with self.read() as conn:
            row = conn.execute(
                "SELECT * FROM collection_embeddings WHERE collection = ?", (collection,)
            ).fetchone()
        return CollectionEmbedding(row["collection"], row["physical"], _spec(row)) if row else None

    def record_embedding(self, collection: str, physical: str, spec: EmbeddingSpec) -> CollectionEmbedding:
        """Record (or re-record) the model of a collection's vectors, held in ``physical``."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO collection_embeddings (collection, physical, model, backend, dim, updated_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(collection) DO UPDATE SET physical = excluded.physical,"
                " model = excluded.model, backend = excluded.backend, dim = excluded.dim,"
                " updated_at = excluded.updated_at",
                (collection, physical, spec.model, spec.backend, spec.dim, time.time()),
            )
        return CollectionEmbedding(collection, physical, spec)

    def vector_sets(self, state: str | None = None, collection: str | None = None) -> list[VectorSet]:
        where, args = equal_to(state=state, collection=collection)
        with self.read() as conn:
            rows = conn.execute(
                f"SELECT * FROM vector_sets WHERE 1=1{where} ORDER BY updated_at, physical", args
            ).fetchall()
        return [VectorSet(r["physical"], r["collection"], r["state"], _spec(r)) for r in rows]

    def begin_vector_set(self, collection: str, physical: str, spec: EmbeddingSpec) -> None:
        """Note a vector set being built for ``collection`` (dropped on open if never switched to)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO vector_sets (physical, collection, state, model, backend, dim, updated_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (physical, collection, BUILDING, spec.model, spec.backend, spec.dim, time.time()),
            )

    def switch_vector_set(self, collection: str, physical: str) -> VectorSet | None:
        """Serve ``collection`` from the built vector set ``physical``, in one transaction.

        The set it replaces becomes ``retired`` and is returned (``None`` if there was none).
        """
        with self.transaction() as conn:
            built = conn.execute(
                "SELECT * FROM vector_sets WHERE physical = ? AND collection = ? AND state = ?",
                (physical, collection, BUILDING),
            ).fetchone()
            if built is None:
                raise KeyError(f"no vector set {physical!r} is being built for {collection!r}")
            old = conn.execute(
                "SELECT * FROM collection_embeddings WHERE collection = ?", (collection,)
            ).fetchone()
            now = time.time()
            conn.execute("DELETE FROM vector_sets WHERE physical = ?", (physical,))
            conn.execute(
                "INSERT INTO collection_embeddings (collection, physical, model, backend, dim, updated_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(collection) DO UPDATE SET physical = excluded.physical,"
                " model = excluded.model, backend = excluded.backend, dim = excluded.dim,"
                " updated_at = excluded.updated_at",
                (collection, physical, built["model"], built["backend"], built["dim"], now),
            )
            if old is None or old["physical"] == physical:
                return None
            conn.execute(
                "INSERT INTO vector_sets (physical, collection, state, model, backend, dim, updated_at)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(physical) DO UPDATE SET collection = excluded.collection,"
                " state = excluded.state, model = excluded.model, backend = excluded.backend,"
                " dim = excluded.dim, updated_at = excluded.updated_at",
                (old["physical"], collection, RETIRED, old["model"], old["backend"], old["dim"], now),
            )
            return VectorSet(old["physical"], collection, RETIRED, _spec(old))

    def forget_vector_set(self, physical: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM vector_sets WHERE physical = ?", (physical,))

    @staticmethod
    def _bump(conn: Connection, collection: str) -> int:
        conn.execute(
            "INSERT INTO generations (collection, generation) VALUES (?, 1)"
            " ON CONFLICT(collection) DO UPDATE SET generation = generations.generation + 1",
            (collection,),
        )
        row = conn.execute(
            "SELECT generation FROM generations WHERE collection = ?", (collection,)
        ).fetchone()
        return int(row[0])


def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, list | tuple | set):
        return actual in wanted
    return bool(actual == wanted)


def _insert_pages(conn: Connection, doc_id: str, pages: Sequence[PageRecord]) -> None:
    conn.executemany(
        "INSERT INTO pages (document_id, page_no, text_offset, source, text, width, height, spans,"
        " boxes) VALUES (?,?,?,?,?,?,?,?,?)",
        (_page_row(doc_id, page) for page in pages),
    )


def discard_unfinished(catalog: Catalog, doc_id: str) -> None:
    """Drop a half-written document's row without touching generations (it was never visible)."""
    with catalog.transaction() as conn:
        if conn.execute("DELETE FROM documents WHERE id = ? AND state = ?", (doc_id, WRITING)).rowcount:
            conn.execute("DELETE FROM pages WHERE document_id = ?", (doc_id,))
