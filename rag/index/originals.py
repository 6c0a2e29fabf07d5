"""The bytes of every stored document, kept so that its pages can be rendered and highlighted.

A document's original is written before its version becomes visible and removed with it
(deleted, replaced by a new version, or left unfinished by a crash), so an active document
always has one and nothing else stays. On the embedded default they are files named by document
id under ``<data dir>/originals`` (hard-linked from the upload when the file system allows). With
a shared blob store (``RAG_BLOB_URL``) they are blobs ``originals/<id>`` that every process
reaches: the worker that ingested a document keeps it, and any replica renders its pages from a
local copy fetched once into ``<data dir>/originals/.cache``. That cache is bounded
(``RAG_ORIGINALS_CACHE_MB``): past the bound the least recently used copies go, never one used
in the last minute (a page may be rendering from it); a copy that went is fetched again.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Collection
from pathlib import Path

from rag.blobs import BlobStore, DirectoryBlobStore
from rag.errors import InvalidRequest

_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
SHARED_PREFIX = "originals/"
IN_USE_S = 60.0
"""A cached copy used this recently is never evicted: a page may be rendering from it."""


class OriginalStore:
    """Documents' original bytes, by document id: a local directory, or a shared blob store."""

    def __init__(
        self,
        root: Path,
        *,
        blobs: BlobStore | None = None,
        cache_bytes: int = 2 << 30,
        in_use_s: float = IN_USE_S,
    ) -> None:
        """``root``: the local directory (the store itself, or the shared store's local cache);
        ``cache_bytes``: the bound of that cache."""
        self.root = root
        self.cache_bytes = cache_bytes
        self.in_use_s = in_use_s
        self.shared = blobs is not None
        self.blobs: BlobStore = blobs if blobs is not None else DirectoryBlobStore(root)
        self._prefix = SHARED_PREFIX if self.shared else ""
        self._cache = root / ".cache"

    def _check(self, doc_id: str) -> str:
        if not _ID.match(doc_id):
            raise InvalidRequest("invalid document id")
        return doc_id

    def path(self, doc_id: str) -> Path:
        """Where the original is (or would be) on this machine."""
        doc_id = self._check(doc_id)
        return self._cache / doc_id if self.shared else self.root / doc_id

    def get(self, doc_id: str) -> Path | None:
        """The original on this machine (fetched once from a shared store), or ``None`` if it is
        not kept (a document stored before originals were)."""
        path = self.path(doc_id)
        if path.is_file():
            if self.shared:
                with contextlib.suppress(OSError):
                    os.utime(path)  # recently used: evicted last
            return path
        if self.shared and self.blobs.fetch(self._prefix + doc_id, path):
            self._trim()
            return path
        return None

    def _trim(self) -> None:
        """Evict the least recently used cached copies until the cache fits its bound."""
        entries = []
        for entry in self._cache.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_file() and not entry.name.startswith(".tmp-"):
                    stat = entry.stat()
                    entries.append((stat.st_mtime, stat.st_size, entry))
        total = sum(size for _, size, _ in entries)
        recent = time.time() - self.in_use_s
        for used, size, entry in sorted(entries, key=lambda e: e[0]):
            if total <= self.cache_bytes or used > recent:
                break
            entry.unlink(missing_ok=True)
            total -= size

    def keep(self, doc_id: str, source: Path) -> None:
        """Store ``source``'s bytes as ``doc_id``'s original (the same id always means the same bytes)."""
        self.blobs.put_file(self._prefix + self._check(doc_id), source)

    def remove(self, doc_id: str) -> None:
        with contextlib.suppress(InvalidRequest):
            self.blobs.delete(self._prefix + self._check(doc_id))
            if self.shared:
                (self._cache / doc_id).unlink(missing_ok=True)

    def sweep(self, known: Collection[str]) -> list[str]:
        """Remove the originals of documents the catalog does not hold, and temporary files.

        Shared, only this machine's cache is swept: another process may be keeping an original
        for a document it has not yet noted in the catalog.
        """
        directory = self._cache if self.shared else self.root
        if not directory.is_dir():
            return []
        removed = []
        for entry in directory.iterdir():
            if entry.is_file() and (entry.name.startswith(".tmp-") or entry.name not in known):
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed


__all__ = ["OriginalStore"]
