"""First start: queue the sample documents so a new user has something to ask about.

They go through intake and the job queue like any upload (in the background, visible in
``/v1/jobs``), only into collections that have never had a document or a job, so a user
who deleted them does not get them back on the next start. Which collections those are
(one per tenant) is the front end's business: it passes them in as :class:`SampleTarget`.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.intake import Admission
from ingest.jobs import Job
from rag.errors import RagError
from rag.logs import log_event
from rag.settings import Settings

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger(__name__)

_SKIP_PREFIXES = ("readme", "license", "licence", "notice")
QUESTIONS = "questions.json"
"""Example questions about the samples, in the samples folder (not ingested)."""


@dataclass(frozen=True, slots=True)
class SampleTarget:
    """Where one tenant's samples go: its jobs' owner and the (internal) collection name."""

    tenant: str
    collection: str


def sample_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.name != QUESTIONS
        and not p.name.lower().startswith(_SKIP_PREFIXES)
    )


def seed_samples(settings: Settings, runtime: Runtime, targets: list[SampleTarget]) -> list[Job]:
    """Queue ``settings.samples_dir``'s documents into each target collection that never had any.

    All of them in one transaction (``QueueFull``: none). A sample intake refuses is left out
    with a warning; the others still go.
    """
    directory = settings.samples_dir
    if directory is None or not directory.is_dir():
        return []
    files = sample_files(directory)
    catalog, store = runtime.index.catalog, runtime.jobs.store
    admissions: list[Admission] = []
    try:
        for target in targets:
            if catalog.documents(target.collection) or store.any_for_collection(target.collection):
                continue
            for source in files:
                admission = _admit_copy(settings, runtime, source, target)
                if admission is not None:
                    admissions.append(admission)
        accepted = runtime.intake.enqueue(admissions) if admissions else []
    except BaseException:
        for admission in admissions:
            admission.path.unlink(missing_ok=True)
        raise
    jobs = [a.job for a in accepted if a.job is not None]
    if jobs:
        log_event(log, "sample documents queued", documents=len(jobs), directory=str(directory))
    return jobs


def _admit_copy(settings: Settings, runtime: Runtime, source: Path, target: SampleTarget) -> Admission | None:
    """A copy of ``source`` in the uploads directory (the job owns and removes it), admitted."""
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    copy = settings.uploads_dir / uuid.uuid4().hex
    shutil.copyfile(source, copy)
    try:
        return runtime.intake.admit(
            copy,
            collection=target.collection,
            name=source.name,
            metadata={"sample": True},
            tenant=target.tenant,
        )
    except RagError as exc:
        copy.unlink(missing_ok=True)
        log_event(
            log, "sample not queued", logging.WARNING, file=source.name, code=exc.code, reason=exc.message
        )
        return None


__all__ = ["QUESTIONS", "SampleTarget", "sample_files", "seed_samples"]
