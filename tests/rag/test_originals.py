"""Kept originals: stored once per document id, removed with the document, orphans swept."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import InvalidRequest
from rag.index.originals import OriginalStore


def test_keep_get_remove_and_sweep(tmp_path: Path) -> None:
    store = OriginalStore(tmp_path / "originals")
    assert store.get("a1") is None and store.sweep({"a1"}) == []
    upload = tmp_path / "upload.pdf"
    upload.write_bytes(b"%PDF-1.7 bytes")
    store.keep("a1", upload)
    store.keep("a1", upload)  # the same id is the same bytes: kept once
    upload.unlink()  # the upload goes away after its job; the original stays
    kept = store.get("a1")
    assert kept is not None and kept.read_bytes() == b"%PDF-1.7 bytes"
    other = tmp_path / "other.txt"
    other.write_bytes(b"text")
    store.keep("b2", other)
    (store.root / ".tmp-crashed").write_bytes(b"half")
    assert sorted(store.sweep({"a1"})) == [".tmp-crashed", "b2"]
    assert store.get("b2") is None and store.get("a1") is not None
    store.remove("a1")
    store.remove("a1")
    assert store.get("a1") is None


@pytest.mark.parametrize("bad", ["../catalog.sqlite3", "a/b", "", "x" * 200])
def test_ids_cannot_leave_the_folder(tmp_path: Path, bad: str) -> None:
    store = OriginalStore(tmp_path)
    with pytest.raises(InvalidRequest):
        store.path(bad)
    store.remove(bad)  # quietly nothing
