"""Intake: how a file enters a collection. The one place that checks, hashes, sniffs,
identifies and deduplicates a file, and queues the job that will ingest it.

Every way in goes through here: an HTTP upload (hashed while it streamed to disk), the
sample documents of a first start, ``rag ingest`` and the evaluation's golden sets (through
``IngestionPipeline.ingest_file``). Each file is hashed once and sniffed once; what intake
established travels with it, in an :class:`Admission` and then in its job's row, so the
worker does not do it again.

What an :class:`Admission` guarantees, when :func:`admit` made it:

* the collection name is valid, and the file was at most ``max_upload_bytes`` long;
* ``content_sha256`` is the hash of the file's bytes (computed here, or by the caller while it
  wrote them), and ``document_id`` is derived from it and the collection, never chosen;
* ``kind`` was sniffed from the bytes (never the name) and has a loader.

Deduplication is advisory: a document already indexed answers ``duplicate`` and no job is
created; content already queued gets that job back (the queue decides, in its transaction).
The store's own write is the final arbiter, so a race between two intakes costs work, never
a second copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.jobs import Job, JobQueue, JobSpec
from ingest.loaders import LOADERS, check_document
from ingest.sniff import sniff
from rag.catalog import ACTIVE
from rag.errors import InvalidRequest, TooLarge, UnsupportedType
from rag.settings import Settings
from rag.types import Document

if TYPE_CHECKING:
    from rag.index.base import DocumentLookup

_READ_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def document_id(collection: str, content_sha256: str) -> str:
    """The content hash, scoped to its collection so tenants never share a document row."""
    return hashlib.sha256(f"{collection}\0{content_sha256}".encode()).hexdigest()[:32]


def validate_collection(name: str) -> str:
    if not name or len(name) > 128 or any(ch in name for ch in "\0/\\") or name != name.strip():
        raise InvalidRequest(f"invalid collection name {name!r}")
    return name


def check_size(path: Path, settings: Settings) -> int:
    """The file's size in bytes; ``TooLarge`` above ``max_upload_bytes``."""
    size = path.stat().st_size
    if size > settings.max_upload_bytes:
        raise TooLarge(f"{path.name} is {size} bytes; the limit is {settings.max_upload_mb} MB")
    return size


@dataclass(frozen=True, slots=True)
class Admission:
    """A file accepted into a collection, with what intake established about it (see the module)."""

    path: Path
    name: str
    collection: str
    document_id: str
    content_sha256: str
    kind: str
    size_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant: str = ""
    """Who it was accepted for: the owner of its job (empty on the command line)."""

    def job_spec(self) -> JobSpec:
        return JobSpec(
            self.tenant,
            self.collection,
            self.document_id,
            self.name,
            self.path,
            self.metadata,
            content_sha256=self.content_sha256,
            kind=self.kind,
            size_bytes=self.size_bytes,
        )

    @classmethod
    def from_job(cls, job: Job) -> Admission | None:
        """What intake recorded in the job's row; ``None`` for a job queued before it recorded it."""
        if job.content_sha256 is None or job.kind is None or job.size_bytes is None:
            return None
        return cls(
            path=Path(job.path),
            name=job.name,
            collection=job.collection,
            document_id=job.document_id,
            content_sha256=job.content_sha256,
            kind=job.kind,
            size_bytes=job.size_bytes,
            metadata=job.metadata,
            tenant=job.tenant,
        )


def admit(
    path: Path,
    settings: Settings,
    *,
    collection: str | None = None,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    tenant: str = "",
    sha256: str | None = None,
) -> Admission:
    """Check, hash, sniff and identify one file on disk; the file itself is not moved or changed.

    ``sha256``: the content hash, when the caller computed it while writing the file (an
    upload streamed to disk); otherwise the file is read once here to compute it. Raises
    ``InvalidRequest`` (collection name), ``TooLarge`` and the ``DocumentError`` of the sniffer
    (``EmptyDocument``, ``UnsupportedType``...).
    """
    collection = validate_collection(collection or settings.default_collection)
    size = check_size(path, settings)
    kind = sniff(path)
    if kind not in LOADERS:  # the sniffer and the loaders agree; this keeps them honest
        raise UnsupportedType(f"no loader for {kind} files")
    check_document(path, settings, kind)
    content = sha256 or file_sha256(path)
    return Admission(
        path=path,
        name=name or path.name,
        collection=collection,
        document_id=document_id(collection, content),
        content_sha256=content,
        kind=kind,
        size_bytes=size,
        metadata=dict(metadata or {}),
        tenant=tenant,
    )


def indexed_copy(catalog: DocumentLookup, admission: Admission) -> Document | None:
    """The active document with these bytes in this collection, if it is indexed already."""
    existing = catalog.get(admission.document_id)
    return existing if existing is not None and existing.state == ACTIVE else None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The outcome of queueing one admitted file."""

    admission: Admission
    duplicate: Document | None
    """The document already indexed with these bytes: no job was created."""
    job: Job | None
    """The job that will produce the document (new, or one already queued or running)."""
    created: bool
    """Whether ``job`` was created by this call."""


class Intake:
    """Admission plus deduplication against the index and the queue, for files that go to the queue."""

    def __init__(self, settings: Settings, catalog: DocumentLookup, queue: JobQueue) -> None:
        self.settings = settings
        self.catalog = catalog
        self.queue = queue

    def admit(
        self,
        path: Path,
        *,
        collection: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        tenant: str = "",
        sha256: str | None = None,
    ) -> Admission:
        """:func:`admit` with this service's settings."""
        return admit(
            path,
            self.settings,
            collection=collection,
            name=name,
            metadata=metadata,
            tenant=tenant,
            sha256=sha256,
        )

    def enqueue(self, admissions: Sequence[Admission]) -> list[Accepted]:
        """Deduplicate, then queue the rest in one transaction: all of them, or none (``QueueFull``).

        The admitted files are expected in the uploads directory; on success intake owns them:
        the file of a duplicate, or of content whose job was already queued, is removed at
        once, and the others belong to their jobs (the queue removes each when its job ends).
        On an error nothing is removed: the caller still owns every file.
        """
        duplicates = [indexed_copy(self.catalog, a) for a in admissions]
        fresh = [a for a, dup in zip(admissions, duplicates, strict=True) if dup is None]
        submitted = iter(self.queue.submit([a.job_spec() for a in fresh]) if fresh else [])
        out: list[Accepted] = []
        for admission, duplicate in zip(admissions, duplicates, strict=True):
            if duplicate is not None:
                out.append(Accepted(admission, duplicate, None, False))
            else:
                job, created = next(submitted)
                out.append(Accepted(admission, None, job, created))
        for accepted in out:
            if not accepted.created:
                accepted.admission.path.unlink(missing_ok=True)
        return out


__all__ = [
    "Accepted",
    "Admission",
    "Intake",
    "admit",
    "check_size",
    "document_id",
    "file_sha256",
    "indexed_copy",
    "validate_collection",
]
