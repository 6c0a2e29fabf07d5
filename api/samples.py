"""First start: queue the sample documents so a new user has something to ask about.

They go through the job queue like any upload (in the background, visible in
``/v1/jobs``), only into collections that have never had a document or a job, so a user
who deleted them does not get them back on the next start.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from api.auth import Principal
from ingest.jobs import Job, JobSpec
from ingest.pipeline import document_id, file_sha256
from rag.logs import log_event

if TYPE_CHECKING:
    from api.service import Service

log = logging.getLogger(__name__)

_SKIP_PREFIXES = ("readme", "license", "licence", "notice")
_QUESTIONS = "questions.json"


def sample_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.name != _QUESTIONS
        and not p.name.lower().startswith(_SKIP_PREFIXES)
    )


def _targets(service: Service) -> list[Principal]:
    ring = service.keyring
    if ring.disabled:
        return [Principal(key_id="local", tenant="local", admin=True)]
    return [Principal(key_id="samples", tenant=t, namespace=t) for t in ring.tenants]


def seed_samples(service: Service) -> list[Job]:
    settings = service.settings
    directory = settings.samples_dir
    if directory is None or not directory.is_dir():
        return []
    files = sample_files(directory)
    catalog = service.runtime.index.catalog
    specs: list[JobSpec] = []
    for principal in _targets(service):
        collection = principal.internal(settings.default_collection)
        if catalog.documents(collection) or service.jobs.store.any_for_collection(collection):
            continue
        for source in files:
            settings.uploads_dir.mkdir(parents=True, exist_ok=True)
            copy = settings.uploads_dir / uuid.uuid4().hex
            shutil.copyfile(source, copy)
            doc_id = document_id(collection, file_sha256(copy))
            specs.append(JobSpec(principal.tenant, collection, doc_id, source.name, copy, {"sample": True}))
    if not specs:
        return []
    jobs = [job for job, _ in service.jobs.submit(specs)]
    log_event(log, "sample documents queued", documents=len(jobs), directory=str(directory))
    print(curl_line(service, directory), flush=True)
    return jobs


def curl_line(service: Service, directory: Path) -> str:
    """A ready-to-paste command that asks about the samples (never prints a key)."""
    settings = service.settings
    question = "What is in these documents?"
    try:
        examples = json.loads((directory / _QUESTIONS).read_text(encoding="utf-8"))
        question = str(examples[0]["question"])
    except (OSError, ValueError, LookupError, TypeError):
        pass
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    body = json.dumps({"question": question})
    auth = "" if service.keyring.disabled else ' -H "Authorization: Bearer $RAG_API_KEY"'
    return (
        "Sample documents are being ingested; ask about them with:\n"
        f"  curl -s http://{host}:{settings.port}/v1/query{auth} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}"
    )
