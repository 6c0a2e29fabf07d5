"""Intake: one place checks, hashes, sniffs, identifies and deduplicates a file; the job carries
what it established, and the pipeline re-checks only what is cheap and safety-relevant."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.intake import Admission, admit, document_id
from ingest.jobs import QUEUED, JobSpec, JobStore
from rag.errors import CorruptDocument, EmptyDocument, InvalidRequest, QueueFull, TooLarge, UnsupportedType
from rag.settings import Settings
from service.runtime import Runtime

TEXT = b"The keepers wound the clockwork that turned the lens of the lighthouse every night.\n"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_admission_records_what_intake_established(settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path / "keepers.txt", TEXT)
    admission = admit(path, settings, collection="c1", metadata={"k": 1}, tenant="t")
    sha = hashlib.sha256(TEXT).hexdigest()
    assert admission.content_sha256 == sha and admission.document_id == document_id("c1", sha)
    assert (admission.kind, admission.size_bytes, admission.name) == ("text", len(TEXT), "keepers.txt")
    assert (admission.collection, admission.metadata, admission.tenant) == ("c1", {"k": 1}, "t")
    assert admit(path, settings).collection == settings.default_collection
    # a hash computed while the bytes were written (an upload) is taken, not computed again
    streamed = admit(path, settings, collection="c1", sha256="ab" * 32)
    assert streamed.content_sha256 == "ab" * 32 and streamed.document_id == document_id("c1", "ab" * 32)


def test_admission_refuses_bad_files(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(max_upload_mb=1)
    with pytest.raises(EmptyDocument):
        admit(write(tmp_path / "empty.txt", b""), settings)
    with pytest.raises(UnsupportedType):
        admit(write(tmp_path / "anim.gif", b"GIF89a" + b"\x00" * 100), settings)
    with pytest.raises(TooLarge):
        admit(write(tmp_path / "big.txt", b"word " * 300_000), settings)
    with pytest.raises(InvalidRequest):
        admit(write(tmp_path / "ok.txt", TEXT), settings, collection="../etc")


def test_enqueue_deduplicates_and_owns_the_files(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(max_queue_depth=2)
    uploads = settings.uploads_dir
    with Runtime(settings) as runtime:
        intake = runtime.intake
        first = intake.admit(write(uploads / "a1", TEXT), name="a.txt", tenant="t")
        again = intake.admit(write(uploads / "a2", TEXT), name="a-copy.txt", tenant="t")
        other = intake.admit(write(uploads / "b1", b"Another text entirely.\n"), name="b.txt", tenant="t")
        accepted = intake.enqueue([first, again, other])
        assert [(a.created, a.duplicate) for a in accepted] == [(True, None), (False, None), (True, None)]
        assert accepted[0].job is not None and accepted[1].job is not None
        assert accepted[0].job.id == accepted[1].job.id  # same content: the same job
        assert first.path.exists() and not again.path.exists() and other.path.exists()
        job = runtime.jobs.store.get(accepted[0].job.id)
        assert job is not None and job.state == QUEUED and job.tenant == "t"
        assert Admission.from_job(job) == first  # the job row carries intake's facts

        # all or nothing: past the queue's depth nothing is queued and the caller keeps its files
        third = intake.admit(write(uploads / "c1", b"A third text.\n"), name="c.txt", tenant="t")
        with pytest.raises(QueueFull):
            intake.enqueue([third])
        assert third.path.exists() and runtime.jobs.store.counts()[QUEUED] == 2


def test_a_jobs_table_from_an_earlier_version_gains_the_intake_columns(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as conn:  # the table as the previous version created it
        conn.execute(
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
            " tenant TEXT NOT NULL, collection TEXT NOT NULL, document_id TEXT NOT NULL, name TEXT NOT NULL,"
            " path TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', state TEXT NOT NULL,"
            " attempts INTEGER NOT NULL DEFAULT 0, run_token TEXT, not_before REAL NOT NULL DEFAULT 0,"
            " progress TEXT NOT NULL DEFAULT '{}', result TEXT, error_code TEXT, error_message TEXT,"
            " created_at REAL NOT NULL, started_at REAL, finished_at REAL, updated_at REAL NOT NULL)"
        )
        conn.execute(
            "INSERT INTO jobs (id, tenant, collection, document_id, name, path, state, created_at, updated_at)"
            " VALUES ('old', 't', 'c', 'd', 'n.txt', '/nowhere', 'queued', 1, 1)"
        )
    store = JobStore(path)
    old = store.get("old")
    assert old is not None and (old.content_sha256, old.kind, old.size_bytes) == (None, None, None)
    assert Admission.from_job(old) is None  # the worker runs intake again for such a job
    [(new, _)] = store.submit(
        [JobSpec("t", "c", "e", "e.txt", tmp_path / "e", content_sha256="f" * 64, kind="text", size_bytes=3)],
        max_depth=10,
    )
    assert (new.content_sha256, new.kind, new.size_bytes) == ("f" * 64, "text", 3)
    store.close()


@pytest.mark.slow
def test_jobs_run_with_intakes_facts_and_the_pipeline_rechecks_them(
    settings: Settings, tmp_path: Path
) -> None:
    uploads = settings.uploads_dir
    with Runtime(settings) as runtime:
        admission = runtime.intake.admit(write(uploads / "a1", TEXT), name="keepers.txt", tenant="t")
        [accepted] = runtime.intake.enqueue([admission])
        job = runtime.jobs.store.claim()
        assert job is not None and accepted.job is not None and job.id == accepted.job.id
        result = runtime.ingestion.run_job(job, lambda _progress: None)
        assert result["document_id"] == admission.document_id and not result["duplicate"]
        indexed = runtime.index.catalog.get(admission.document_id)
        assert indexed is not None and (indexed.kind, indexed.content_sha256) == (
            "text",
            admission.content_sha256,
        )

        # a job queued before intake recorded its facts: the worker admits the file itself
        legacy_path = write(uploads / "b1", b"Lighthouses warn ships away from rocks at night.\n")
        legacy = admit(legacy_path, settings, collection="c2")
        [(queued, _)] = runtime.jobs.store.submit(
            [JobSpec("t", "c2", legacy.document_id, "b.txt", legacy_path)], max_depth=10
        )
        claimed = runtime.jobs.store.claim()
        assert claimed is not None and claimed.id == queued.id and claimed.kind is None
        assert runtime.ingestion.run_job(claimed, lambda _progress: None)["document_id"] == legacy.document_id

        # an id a caller chose, or a file changed since it was admitted, is refused before any work
        other = admit(write(tmp_path / "c.txt", b"Keepers kept a log of every ship.\n"), settings)
        forged = dataclasses.replace(other, document_id=admission.document_id)
        with pytest.raises(InvalidRequest):
            runtime.ingestion.ingest(forged)
        other.path.write_bytes(b"Keepers kept a log of every ship, and of the weather.\n")
        with pytest.raises(CorruptDocument):
            runtime.ingestion.ingest(other)
        assert runtime.index.catalog.get(other.document_id) is None
