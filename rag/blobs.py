"""Bytes every process can reach: uploads waiting for a worker, originals kept for rendering.

``RAG_BLOB_URL`` picks the store: unset, a directory under the data directory (one process);
``file:///shared/volume``, a directory every machine mounts; ``s3://bucket/prefix``, S3 or any
S3-compatible server (``RAG_S3_ENDPOINT_URL``) through boto3, with credentials and region from
the usual ``AWS_*`` variables. A key, once written, always means the same bytes (callers put a
document id or a random part in it), so a second put of a key is skipped and a reader never
sees a blob change under it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from rag.errors import BlobUnavailable, ConfigurationError, InvalidRequest

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,511}$")
_PART = 255


def check_key(key: str) -> str:
    """Refuse keys that could leave the store's directory or name one file two ways.

    No part may be empty or start with a dot: ``..`` climbs out, ``a/./b`` is ``a/b`` on a disk but
    another object in S3, and ``.tmp-*`` is the directory store's own half-written file. A part is
    at most 255 characters, the longest file name most file systems take.
    """
    parts = key.split("/")
    if not _KEY.match(key) or any(not p or p.startswith(".") or len(p) > _PART for p in parts):
        raise InvalidRequest(f"invalid blob key {key[:80]!r}")
    return key


class BlobStore(Protocol):
    """Where shared bytes live; every implementation runs ``tests/rag/test_blobs.py``."""

    def put_file(self, key: str, source: Path) -> None:
        """Store ``source``'s bytes under ``key`` (nothing to do when the key exists)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Like ``put_file``, for bytes already in memory."""
        ...

    def fetch(self, key: str, dest: Path) -> bool:
        """Write the blob to ``dest`` (atomically); ``False`` when there is no such blob."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing one is fine."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def describe(self) -> str:
        """Where it is, for logs (never credentials)."""
        ...


@contextlib.contextmanager
def _beside(dest: Path) -> Iterator[Path]:
    """A temporary name in ``dest``'s directory (so the rename is atomic), gone unless renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_copy(source: Path, dest: Path, *, link: bool) -> None:
    """``dest`` gets ``source``'s bytes whole or not at all (a temporary name, then a rename)."""
    with _beside(dest) as tmp:
        tmp.unlink()
        try:
            if not link:
                raise OSError
            os.link(source, tmp)  # no copy of a 50 MB filing when the file system allows
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)


class DirectoryBlobStore:
    """Blobs as files under one directory: the data directory's, or a volume every machine mounts."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        if not target.is_file():
            _atomic_copy(source, target, link=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        if not target.is_file():
            with _beside(target) as tmp:
                tmp.write_bytes(data)
                os.replace(tmp, target)

    def fetch(self, key: str, dest: Path) -> bool:
        source = self._path(key)
        if not source.is_file():
            return False
        try:
            _atomic_copy(source, dest, link=False)  # the reader may change or remove its copy
        except FileNotFoundError:  # deleted meanwhile
            return False
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def describe(self) -> str:
        return f"directory {self.root}"


class S3BlobStore:
    """Blobs as objects under ``prefix`` in an S3 bucket (or an S3-compatible server)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextlib.contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise BlobUnavailable(
                f"the blob store refused to {action} ({code}) at {self.describe()}"
            ) from exc
        except BotoCoreError as exc:
            raise BlobUnavailable(
                f"the blob store could not {action} at {self.describe()}: {exc.__class__.__name__}"
            ) from exc

    def put_file(self, key: str, source: Path) -> None:
        if self.exists(key):
            return
        with self._calling("store a blob"):
            self.client.upload_file(str(source), self.bucket, self._name(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        if self.exists(key):
            return
        with self._calling("store a blob"):
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)

    def fetch(self, key: str, dest: Path) -> bool:
        from botocore.exceptions import ClientError

        name = self._name(key)
        with _beside(dest) as tmp, self._calling("read a blob"):
            try:
                self.client.download_file(self.bucket, name, str(tmp))
            except ClientError as exc:
                if _missing(exc):
                    return False
                raise
            os.replace(tmp, dest)
        return True

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with self._calling("look up a blob"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._name(key))
            except ClientError as exc:
                if _missing(exc):
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        with self._calling("delete a blob"):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        with self._calling("list blobs"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]

    def describe(self) -> str:
        endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", "")
        return f"s3://{self.bucket}/{self.prefix} ({endpoint})"


def _missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def open_blob_store(url: str | None, default_root: Path, endpoint_url: str | None = None) -> BlobStore:
    """The store ``RAG_BLOB_URL`` names (``None``: a directory under the data directory)."""
    if not url:
        return DirectoryBlobStore(default_root)
    parsed = urlparse(url)
    directory = Path(unquote(parsed.path))
    if parsed.scheme == "file" and directory.is_absolute() and parsed.netloc in ("", "localhost"):
        return DirectoryBlobStore(directory)
    if parsed.scheme == "s3" and parsed.netloc:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
            ),
        )
        return S3BlobStore(parsed.netloc, parsed.path, client)
    raise ConfigurationError(
        "RAG_BLOB_URL must be file:///absolute/directory or s3://bucket/prefix (unset: the data directory)"
    )


__all__ = [
    "BlobStore",
    "BlobUnavailable",
    "DirectoryBlobStore",
    "S3BlobStore",
    "check_key",
    "open_blob_store",
]
