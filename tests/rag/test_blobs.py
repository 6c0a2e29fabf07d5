"""The blob store contract, run by every implementation: a local directory, a shared directory
through a ``file://`` URL, and S3 at the wire (moto's server mode through boto3)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.blobs import BlobStore, DirectoryBlobStore, S3BlobStore, open_blob_store
from rag.errors import BlobUnavailable, ConfigurationError, InvalidRequest
from rag.index.originals import OriginalStore
from tests.fakes.s3_server import CREDENTIALS, s3_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def s3_store(endpoint: str, bucket: str, prefix: str = "blobs") -> S3BlobStore:
    store = open_blob_store(f"s3://{bucket}/{prefix}", Path("/nonexistent"), endpoint)
    assert isinstance(store, S3BlobStore)
    return store


@pytest.fixture(params=["directory", "file-url", "s3"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A factory: each call opens another handle on the same store (another process's view)."""
    if request.param == "directory":
        yield lambda: DirectoryBlobStore(tmp_path / "blobs")
    elif request.param == "file-url":
        yield lambda: open_blob_store((tmp_path / "shared volume").as_uri(), tmp_path / "unused")
    else:
        request.getfixturevalue("aws_env")
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = "b" + uuid.uuid4().hex[:12]
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        yield lambda: s3_store(endpoint, bucket)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def real_pdf(datasets: Path) -> Path:
    return min(
        (datasets / "financebench_scanned_evidence" / "pdfs").glob("*.pdf"), key=lambda p: p.stat().st_size
    )


def test_a_blob_comes_back_byte_for_byte_and_once_written_never_changes(
    make_store: object, real_pdf: Path, tmp_path: Path
) -> None:
    store: BlobStore = make_store()  # type: ignore[operator]
    store.put_file("uploads/doc1/a", real_pdf)
    assert store.exists("uploads/doc1/a")
    assert store.fetch("uploads/doc1/a", tmp_path / "out" / "copy.pdf")
    assert sha(tmp_path / "out" / "copy.pdf") == sha(real_pdf)
    other = tmp_path / "other.bin"
    other.write_bytes(b"different bytes")
    store.put_file("uploads/doc1/a", other)  # the same key always means the same bytes
    assert store.fetch("uploads/doc1/a", tmp_path / "again.pdf")
    assert sha(tmp_path / "again.pdf") == sha(real_pdf)


def test_bytes_in_memory_are_stored_like_files(make_store: object, real_pdf: Path, tmp_path: Path) -> None:
    store: BlobStore = make_store()  # type: ignore[operator]
    store.put_bytes("originals/d1", real_pdf.read_bytes())
    store.put_bytes("originals/d1", b"other bytes")  # kept once
    assert store.fetch("originals/d1", tmp_path / "copy.pdf")
    assert sha(tmp_path / "copy.pdf") == sha(real_pdf)
    assert list(store.keys("originals/")) == ["originals/d1"]


def test_absent_blobs_keys_and_delete(make_store: object, tmp_path: Path) -> None:
    store: BlobStore = make_store()  # type: ignore[operator]
    source = tmp_path / "x.txt"
    source.write_text("x")
    dest = tmp_path / "dest.txt"
    assert not store.exists("nope") and not store.fetch("nope", dest)
    assert not dest.exists() and not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    dest.write_text("a copy fetched earlier")
    assert not store.fetch("nope", dest)  # a failed fetch leaves what was there
    assert dest.read_text() == "a copy fetched earlier"
    for key in ("uploads/d1/a", "uploads/d2/b", "originals/d1"):
        store.put_file(key, source)
    assert sorted(store.keys("uploads/")) == ["uploads/d1/a", "uploads/d2/b"]
    assert sorted(store.keys()) == ["originals/d1", "uploads/d1/a", "uploads/d2/b"]
    store.delete("uploads/d1/a")
    store.delete("uploads/d1/a")  # missing is fine
    assert not store.exists("uploads/d1/a") and sorted(store.keys("uploads/")) == ["uploads/d2/b"]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../etc/passwd",
        "a/../../b",
        "/abs",
        "a//b",
        "dir/",
        "spa ce",
        "x" * 513,
        "x" * 256,  # longer than a file name can be
        "a/./b",  # would be a/b on a disk, another object in S3
        "a/.",
        ".hidden",
        "a/.tmp-x",  # the directory store's own temporary files
    ],
)
def test_invalid_keys_are_refused(make_store: object, key: str, tmp_path: Path) -> None:
    store: BlobStore = make_store()  # type: ignore[operator]
    source = tmp_path / "x.txt"
    source.write_text("x")
    for call in (
        lambda: store.put_file(key, source),
        lambda: store.put_bytes(key, b"x"),
        lambda: store.fetch(key, tmp_path / "out" / "x"),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(InvalidRequest):
            call()
    assert not (tmp_path / "out").exists()


def test_the_longest_keys_are_allowed(make_store: object) -> None:
    store: BlobStore = make_store()  # type: ignore[operator]
    key = "/".join(["k" * 255, "k" * 254, "k"])  # 512 characters, no part over 255
    store.put_bytes(key, b"x")
    assert store.exists(key)


def test_two_processes_on_the_same_store_see_each_others_blobs(make_store: object, tmp_path: Path) -> None:
    replica: BlobStore = make_store()  # type: ignore[operator]
    worker: BlobStore = make_store()  # type: ignore[operator]
    source = tmp_path / "upload.txt"
    source.write_text("queued by a replica")
    replica.put_file("uploads/d1/k", source)
    assert worker.fetch("uploads/d1/k", tmp_path / "fetched.txt")
    assert (tmp_path / "fetched.txt").read_text() == "queued by a replica"
    worker.delete("uploads/d1/k")
    assert not replica.exists("uploads/d1/k")


def test_originals_in_a_shared_store_render_from_any_process(
    make_store: object, real_pdf: Path, tmp_path: Path
) -> None:
    worker = OriginalStore(tmp_path / "worker-originals", blobs=make_store())  # type: ignore[operator]
    replica = OriginalStore(tmp_path / "replica-originals", blobs=make_store())  # type: ignore[operator]
    worker.keep("doc1", real_pdf)
    local = replica.get("doc1")  # the replica never saw the upload
    assert local is not None and local.is_file() and sha(local) == sha(real_pdf)
    assert replica.get("missing") is None
    replica.remove("doc1")  # deleted through the replica: gone for everyone
    assert worker.get("doc1") is None and not local.exists()


def test_blob_urls_are_checked(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(None, tmp_path), DirectoryBlobStore)
    for bad in ("ftp://host/x", "file://otherhost/x", "file:relative/x", "s3://", "relative/path"):
        with pytest.raises(ConfigurationError, match="RAG_BLOB_URL"):
            open_blob_store(bad, tmp_path)


def test_an_unreachable_s3_endpoint_is_a_clear_error(aws_env: None, tmp_path: Path) -> None:
    from tests.conftest import free_port

    store = s3_store(f"http://127.0.0.1:{free_port()}", "bucket")
    source = tmp_path / "x.txt"
    source.write_text("x")
    for call in (
        lambda: store.put_file("uploads/x", source),
        lambda: store.put_bytes("uploads/x", b"x"),
        lambda: store.fetch("uploads/x", tmp_path / "out"),
        lambda: store.exists("uploads/x"),
        lambda: list(store.keys()),
        lambda: store.delete("uploads/x"),
    ):
        with pytest.raises(BlobUnavailable) as caught:
            call()
        assert caught.value.status == 503 and "testing-secret" not in str(caught.value)
    assert not (tmp_path / "out").exists()
