"""The bytes of every stored document, kept so that its pages can be rendered and highlighted.

One file per document id under ``<data dir>/originals``; a document's original is written
before its version becomes visible and removed with it (deleted, replaced by a new version, or
left unfinished by a crash), so an active document always has one and nothing else stays.
Hard-linked from the upload when the file system allows (no copy of a 50 MB filing), else
copied to a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

from rag.errors import InvalidRequest

_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class OriginalStore:
    """A directory of documents' original bytes, named by document id."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, doc_id: str) -> Path:
        if not _ID.match(doc_id):
            raise InvalidRequest("invalid document id")
        return self.root / doc_id

    def get(self, doc_id: str) -> Path | None:
        """The original's path, or ``None`` if it is not kept (a document stored before originals were)."""
        path = self.path(doc_id)
        return path if path.is_file() else None

    def keep(self, doc_id: str, source: Path) -> None:
        """Store ``source``'s bytes as ``doc_id``'s original (the same id always means the same bytes)."""
        target = self.path(doc_id)
        if target.is_file():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=self.root)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def remove(self, doc_id: str) -> None:
        with contextlib.suppress(InvalidRequest):
            self.path(doc_id).unlink(missing_ok=True)

    def sweep(self, known: Collection[str]) -> list[str]:
        """Remove the originals of documents the catalog does not hold, and temporary files."""
        if not self.root.is_dir():
            return []
        removed = []
        for entry in self.root.iterdir():
            if entry.name.startswith(".tmp-") or entry.name not in known:
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed


__all__ = ["OriginalStore"]
