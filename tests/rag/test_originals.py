"""Kept originals: stored once per document id, removed with the document, orphans swept."""

from __future__ import annotations

import os
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


def _replica_cache(store: OriginalStore) -> set[str]:
    return {p.name for p in (store.root / ".cache").iterdir()}


@pytest.mark.parametrize("in_use_s", [0.0, 60.0])
def test_a_replicas_cache_of_shared_originals_is_bounded(tmp_path: Path, in_use_s: float) -> None:
    from rag.blobs import DirectoryBlobStore

    shared = DirectoryBlobStore(tmp_path / "shared")
    worker = OriginalStore(tmp_path / "worker", blobs=shared)
    for doc_id in ("a", "b", "c"):
        upload = tmp_path / f"{doc_id}.pdf"
        upload.write_bytes(doc_id.encode() * 1000)
        worker.keep(doc_id, upload)
    replica = OriginalStore(tmp_path / "replica", blobs=shared, cache_bytes=2500, in_use_s=in_use_s)
    for age, doc_id in enumerate(("a", "b")):
        path = replica.get(doc_id)
        assert path is not None
        if not in_use_s:
            os.utime(path, (1_000_000 + age, 1_000_000 + age))  # a used long ago, then b
    assert replica.get("c") is not None
    if in_use_s:  # used within the minute: kept, whatever the bound says
        assert _replica_cache(replica) == {"a", "b", "c"}
        return
    assert _replica_cache(replica) == {"b", "c"}  # a was the least recently used
    again = replica.get("a")  # fetched again, and b goes
    assert again is not None and again.read_bytes() == b"a" * 1000
    assert _replica_cache(replica) == {"a", "c"}
    assert worker.get("b") is not None  # only the replica's copy went
