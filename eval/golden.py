"""Golden sets: one record format, and loaders that turn public QA/retrieval formats into it.

Every set names its documents, so a runner can ingest exactly those into a collection of their
own and then ask every question. Evidence points at a document by the name it is ingested under
(``SourceDocument.id``) and, where known, at a 1-based page, as a PDF viewer shows it.

Shipped sets live in ``data/golden/<set>/`` as ``manifest.json`` + ``questions.jsonl`` + ``docs/``.
A manifest may also point outside the set with ``datasets:<path>`` (resolved against the shared
datasets folder, ``../shared/datasets`` beside the repository by default) so large files need
not be copied.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rag.errors import GoldenSetNotFound, InvalidGoldenSet

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GOLDEN_DIR = REPO_ROOT / "data" / "golden"
DEFAULT_DATASETS_DIR = REPO_ROOT.parent / "shared" / "datasets"
MANIFEST = "manifest.json"
QUESTIONS = "questions.jsonl"
FORMAT = "rag-golden/1"
DATASETS_PREFIX = "datasets:"

SetKind = Literal["qa", "retrieval"]
_SAFE_NAME = re.compile(r"^[\w][\w .,()+=&'-]*$")


class EvidenceRef(BaseModel):
    """Where the answer is: a document, optionally a 1-based page and the supporting text.

    ``relevance`` carries graded judgements (BEIR/TREC qrels); answer sets leave it at 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    doc: str = Field(min_length=1)
    page: int | None = Field(default=None, ge=1)
    text: str | None = None
    relevance: int = 1


class GoldenRecord(BaseModel):
    """One question. Unanswerable questions have no answers (the right output is an abstention)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)
    evidence: list[EvidenceRef] = Field(default_factory=list)
    answerable: bool = True

    @model_validator(mode="after")
    def _unanswerable_has_no_answer(self) -> GoldenRecord:
        if not self.answerable and self.answers:
            raise ValueError("an unanswerable question cannot have gold answers")
        return self


class SourceDocument(BaseModel):
    """A document of a set: a file on disk (``path``) or inline text (``text``), never both."""

    id: str = Field(min_length=1)
    path: Path | None = None
    text: str | None = None
    title: str | None = None
    sha256: str | None = None
    pages: int | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SourceDocument:
        if (self.path is None) == (self.text is None):
            raise ValueError(f"document {self.id!r} needs exactly one of path or text")
        return self

    def read_bytes(self) -> bytes:
        """The bytes to ingest, checked against the recorded hash so a changed copy is caught."""
        if self.text is not None:
            data = self.text.encode("utf-8")
        else:
            assert self.path is not None
            try:
                data = self.path.read_bytes()
            except OSError as exc:
                raise InvalidGoldenSet(f"document {self.id!r} cannot be read at {self.path}: {exc}") from exc
        if self.sha256 is not None and hashlib.sha256(data).hexdigest() != self.sha256:
            raise InvalidGoldenSet(f"document {self.id!r} at {self.path} does not match its sha256")
        return data

    def content_sha256(self) -> str:
        return self.sha256 or hashlib.sha256(self.read_bytes()).hexdigest()


class GoldenSet(BaseModel):
    """Questions plus the documents they are asked over."""

    name: str
    kind: SetKind = "qa"
    records: list[GoldenRecord]
    documents: list[SourceDocument]
    description: str = ""
    source: str = ""
    license: str = ""
    stats: dict[str, Any] = Field(default_factory=dict)
    base_dir: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> GoldenSet:
        seen: set[str] = set()
        for record in self.records:
            if record.id in seen:
                raise ValueError(f"duplicate question id {record.id!r}")
            seen.add(record.id)
        doc_ids = [d.id for d in self.documents]
        if len(set(doc_ids)) != len(doc_ids):
            raise ValueError("duplicate document ids")
        known = set(doc_ids)
        for record in self.records:
            for ev in record.evidence:
                if ev.doc not in known:
                    raise ValueError(f"question {record.id!r} cites unknown document {ev.doc!r}")
        return self

    @property
    def answerable_count(self) -> int:
        return sum(r.answerable for r in self.records)

    def qrels(self, level: Literal["doc", "page"] = "doc") -> dict[str, dict[str, int]]:
        """Judgements for retrieval metrics; page level keys are ``page_key(doc, page)``."""
        out: dict[str, dict[str, int]] = {}
        for record in self.records:
            rels: dict[str, int] = {}
            for ev in record.evidence:
                if ev.relevance <= 0:
                    continue
                if level == "doc":
                    key = ev.doc
                elif ev.page is not None:
                    key = page_key(ev.doc, ev.page)
                else:
                    continue
                rels[key] = max(rels.get(key, 0), ev.relevance)
            if rels:
                out[record.id] = rels
        return out

    def content_key(self) -> str:
        """Short hash of the documents' contents: the same documents map to the same collection."""
        digest = hashlib.sha256()
        for doc in sorted(self.documents, key=lambda d: d.id):
            digest.update(f"{doc.id}\t{doc.content_sha256()}\n".encode())
        return digest.hexdigest()[:16]

    def subset(self, limit: int, *, evidence_documents_only: bool = False) -> GoldenSet:
        """The first ``limit`` questions; keeps every document unless told to keep only cited ones."""
        if limit < 1:
            raise InvalidGoldenSet("limit must be at least 1")
        records = self.records[:limit]
        documents = self.documents
        if evidence_documents_only:
            wanted = {ev.doc for r in records for ev in r.evidence}
            documents = [d for d in self.documents if d.id in wanted]
        return self.model_copy(update={"records": records, "documents": documents})


def page_key(doc: str, page: int) -> str:
    """The id of one page of a document in page-level runs and qrels."""
    return f"{doc}#p{page}"


# --------------------------------------------------------------------------- helpers


def _build(**fields: Any) -> GoldenSet:
    try:
        return GoldenSet(**fields)
    except ValidationError as exc:
        raise InvalidGoldenSet(
            f"golden set {fields.get('name')!r} is inconsistent: {_first_error(exc)}"
        ) from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise GoldenSetNotFound(f"{path} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidGoldenSet(f"{path} is not valid JSON: {exc}") from exc


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidGoldenSet(f"{path}:{line_no} is not valid JSON: {exc.msg}") from exc
                if not isinstance(row, dict):
                    raise InvalidGoldenSet(f"{path}:{line_no} is not a JSON object")
                yield line_no, row
    except FileNotFoundError as exc:
        raise GoldenSetNotFound(f"{path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidGoldenSet(f"{path} cannot be read: {exc}") from exc


def _dedup(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


def slug(text: str) -> str:
    """A file-name-safe, lower-case rendering of a title."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "doc"


def _record(path: Path, where: object, **fields: Any) -> GoldenRecord:
    try:
        return GoldenRecord(**fields)
    except ValidationError as exc:
        raise InvalidGoldenSet(f"{path} ({where}): {_first_error(exc)}") from exc


# --------------------------------------------------------------------------- SQuAD


def load_squad(path: Path, *, name: str | None = None) -> GoldenSet:
    """SQuAD v1.1 or v2.0 JSON: each paragraph becomes a text document named ``<title>-pNNN.txt``."""
    payload = _read_json(path)
    articles = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(articles, list):
        raise InvalidGoldenSet(f"{path} is not SQuAD JSON (no 'data' list)")
    records: list[GoldenRecord] = []
    documents: list[SourceDocument] = []
    try:
        for article in articles:
            title = str(article.get("title", "untitled"))
            for p_idx, paragraph in enumerate(article["paragraphs"]):
                doc_id = f"{slug(title)}-p{p_idx:03d}.txt"
                documents.append(SourceDocument(id=doc_id, text=paragraph["context"], title=title))
                for qa in paragraph["qas"]:
                    answers = _dedup(a["text"] for a in qa.get("answers", []))
                    answerable = not qa.get("is_impossible", False) and bool(answers)
                    evidence = [EvidenceRef(doc=doc_id, text=answers[0])] if answerable else []
                    records.append(
                        _record(
                            path,
                            qa.get("id"),
                            id=str(qa["id"]),
                            question=qa["question"],
                            answers=answers if answerable else [],
                            evidence=evidence,
                            answerable=answerable,
                        )
                    )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidGoldenSet(f"{path} is not SQuAD JSON: missing or malformed {exc}") from exc
    version = str(payload.get("version", ""))
    return _build(
        name=name or path.stem,
        kind="qa",
        records=records,
        documents=documents,
        source=f"SQuAD {version}".strip(),
        base_dir=path.parent,
    )


# --------------------------------------------------------------------------- BEIR


def load_beir(directory: Path, *, split: str = "test", name: str | None = None) -> GoldenSet:
    """BEIR layout: ``corpus.jsonl`` (_id, title, text), ``queries.jsonl`` (_id, text), ``qrels/<split>.tsv``.

    Only queries that have judgements become records (the BEIR convention); graded relevance is
    kept in ``EvidenceRef.relevance`` so nDCG uses the real gains.
    """
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        available = sorted(p.stem for p in (directory / "qrels").glob("*.tsv"))
        if len(available) == 1:
            qrels_path = directory / "qrels" / f"{available[0]}.tsv"
        else:
            raise InvalidGoldenSet(
                f"{directory} has no qrels/{split}.tsv (found: {', '.join(available) or 'none'})"
            )
    documents: list[SourceDocument] = []
    for line_no, row in _iter_jsonl(directory / "corpus.jsonl"):
        try:
            title, text = str(row.get("title") or "").strip(), str(row["text"])
            documents.append(
                SourceDocument(
                    id=str(row["_id"]), text=f"{title}\n\n{text}" if title else text, title=title or None
                )
            )
        except (KeyError, ValidationError) as exc:
            raise InvalidGoldenSet(f"corpus.jsonl:{line_no} needs _id and text") from exc
    queries: dict[str, str] = {}
    for line_no, row in _iter_jsonl(directory / "queries.jsonl"):
        if "_id" not in row or "text" not in row:
            raise InvalidGoldenSet(f"queries.jsonl:{line_no} needs _id and text")
        queries[str(row["_id"])] = str(row["text"])
    judgements: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as fh:
        for line_no, parts in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if not parts or (line_no == 1 and parts[0] in {"query-id", "qid", "query_id"}):
                continue
            if len(parts) < 3:
                raise InvalidGoldenSet(f"{qrels_path}:{line_no} needs query-id, corpus-id and score")
            try:
                judgements.setdefault(parts[0], {})[parts[1]] = int(float(parts[2]))
            except ValueError as exc:
                raise InvalidGoldenSet(f"{qrels_path}:{line_no} has a non-numeric score") from exc
    records = []
    for qid, rels in judgements.items():
        if qid not in queries:
            raise InvalidGoldenSet(f"{qrels_path} judges query {qid!r} that queries.jsonl lacks")
        evidence = [EvidenceRef(doc=doc, relevance=rel) for doc, rel in rels.items() if rel > 0]
        records.append(
            GoldenRecord(
                id=qid, question=queries[qid], answers=[], evidence=evidence, answerable=bool(evidence)
            )
        )
    return _build(
        name=name or directory.name,
        kind="retrieval",
        records=records,
        documents=documents,
        source="BEIR",
        base_dir=directory,
    )


# --------------------------------------------------------------------------- FinanceBench


def load_financebench(
    path: Path, pdf_dir: Path | None = None, *, name: str | None = None, skip_missing: bool = False
) -> GoldenSet:
    """FinanceBench JSONL plus its PDFs. Its ``evidence_page_num`` is zero-based; we store 1-based."""
    pdf_dir = pdf_dir or path.parent.parent / "pdfs"
    records: list[GoldenRecord] = []
    documents: dict[str, SourceDocument] = {}
    missing: set[str] = set()
    for line_no, row in _iter_jsonl(path):
        try:
            default_doc = str(row["doc_name"])
            evidence = []
            for ev in row.get("evidence") or []:
                doc = f"{ev.get('evidence_doc_name') or ev.get('doc_name') or default_doc}.pdf"
                page = ev.get("evidence_page_num")
                evidence.append(
                    EvidenceRef(
                        doc=doc,
                        page=int(page) + 1 if page is not None else None,
                        text=ev.get("evidence_text"),
                    )
                )
            doc_names = {f"{default_doc}.pdf", *(e.doc for e in evidence)}
            absent = {d for d in doc_names if not (pdf_dir / d).exists()}
            if absent:
                missing |= absent
                if skip_missing:
                    continue
            for doc in doc_names:
                documents.setdefault(doc, SourceDocument(id=doc, path=pdf_dir / doc))
            records.append(
                _record(
                    path,
                    f"line {line_no}",
                    id=str(row["financebench_id"]),
                    question=row["question"],
                    answers=[str(row["answer"])],
                    evidence=evidence,
                    answerable=True,
                )
            )
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise InvalidGoldenSet(f"{path}:{line_no} is not a FinanceBench record: {exc}") from exc
    if missing and not skip_missing:
        raise InvalidGoldenSet(f"PDFs missing from {pdf_dir}: {', '.join(sorted(missing))}")
    return _build(
        name=name or "financebench",
        kind="qa",
        records=records,
        documents=sorted(documents.values(), key=lambda d: d.id),
        source="FinanceBench",
        license="CC BY-NC 4.0 (questions); filings are public",
        base_dir=path.parent,
    )


# --------------------------------------------------------------------------- ClapNQ


def clapnq_passage_ids(directory: Path) -> dict[str, str]:
    """Question id -> passage id, from ``retrieval/*.tsv`` (the unanswerable ones have none)."""
    passage_ids: dict[str, str] = {}
    for tsv in sorted((directory / "retrieval").glob("*.tsv")):
        with tsv.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                ids = (row.get("doc-id-list") or "").split(",")
                if row.get("id") and ids[0].strip():
                    passage_ids[row["id"]] = ids[0].strip()
    return passage_ids


def _clapnq_doc_id(question_id: str, passage_ids: Mapping[str, str]) -> str:
    return f"clapnq-{passage_ids.get(question_id, 'q' + question_id)}.txt"


def _read_clapnq(directory: Path) -> tuple[list[GoldenRecord], list[SourceDocument], dict[str, str]]:
    passage_ids = clapnq_passage_ids(directory)
    files = sorted((directory / "annotated_data").glob("*.jsonl"))
    if not files:
        raise GoldenSetNotFound(f"{directory}/annotated_data has no .jsonl files")
    records: list[GoldenRecord] = []
    documents: dict[str, SourceDocument] = {}
    by_text: dict[str, str] = {}
    asked_over: dict[str, str] = {}
    for path in files:
        for line_no, row in _iter_jsonl(path):
            try:
                qid = str(row["id"])
                passage = row["passages"][0]
                title = str(passage.get("title") or "").strip()
                text = f"{title}\n\n{passage['text'].strip()}"
                # one document per passage: an identical passage under another id is the same document
                doc_id = by_text.get(text) or _clapnq_doc_id(qid, passage_ids)
                if doc_id not in documents:
                    documents[doc_id] = SourceDocument(id=doc_id, text=text, title=title or None)
                    by_text[text] = doc_id
                asked_over[qid] = doc_id
                outputs = row.get("output") or []
                answers = _dedup(str(o.get("answer") or "").strip() for o in outputs)
                sentences: list[str] = next(
                    (o["selected_sentences"] for o in outputs if o.get("selected_sentences")), []
                )
                evidence = [EvidenceRef(doc=doc_id, text=" ".join(sentences) or None)] if answers else []
                records.append(
                    _record(
                        path,
                        f"line {line_no}",
                        id=qid,
                        question=row["input"],
                        answers=answers,
                        evidence=evidence,
                        answerable=bool(answers),
                    )
                )
            except (KeyError, IndexError, TypeError, AttributeError) as exc:
                raise InvalidGoldenSet(f"{path}:{line_no} is not a ClapNQ record: missing {exc}") from exc
    return records, list(documents.values()), asked_over


def clapnq_asked_over(directory: Path) -> dict[str, str]:
    """Question id -> the document of the passage it was asked over (unanswerable ones included)."""
    return _read_clapnq(directory)[2]


def load_clapnq(directory: Path, *, name: str | None = None) -> GoldenSet:
    """ClapNQ: ``annotated_data/*.jsonl`` (question, its passage, long answers) and optionally
    ``retrieval/*.tsv`` for passage ids. Each passage becomes ``clapnq-<passage id>.txt`` (title,
    blank line, text); passages without an id (the unanswerable ones) are named by question id,
    and a passage that repeats another word for word is that same document.
    """
    records, documents, _ = _read_clapnq(directory)
    return _build(
        name=name or "clapnq",
        kind="qa",
        records=records,
        documents=documents,
        source="ClapNQ",
        license="Apache-2.0",
        base_dir=directory,
    )


# --------------------------------------------------------------------------- our own format


def load_jsonl(path: Path, *, docs_dir: Path | None = None, name: str | None = None) -> GoldenSet:
    """Our record format, one ``GoldenRecord`` per line; documents are the files in ``docs_dir``
    (default: ``docs/`` beside the file), every one of which is ingested (distractors included).
    """
    records = [_record(path, f"line {n}", **row) for n, row in _iter_jsonl(path)]
    docs_dir = docs_dir or path.parent / "docs"
    documents = (
        [SourceDocument(id=p.name, path=p) for p in sorted(docs_dir.iterdir()) if p.is_file()]
        if docs_dir.is_dir()
        else []
    )
    known = {d.id for d in documents}
    missing = sorted({ev.doc for r in records for ev in r.evidence} - known)
    if missing:
        raise InvalidGoldenSet(f"documents cited by {path} are not in {docs_dir}: {', '.join(missing[:5])}")
    return _build(
        name=name or path.stem,
        kind="qa" if any(r.answers or not r.answerable for r in records) else "retrieval",
        records=records,
        documents=documents,
        base_dir=path.parent,
    )


def load_manifest_set(directory: Path, *, datasets_dir: Path | None = None) -> GoldenSet:
    """A shipped set: ``manifest.json`` naming the documents, ``questions.jsonl`` the records."""
    manifest = _read_json(directory / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidGoldenSet(f"{directory / MANIFEST} is not a {FORMAT} manifest")
    datasets_dir = datasets_dir or DEFAULT_DATASETS_DIR
    documents: list[SourceDocument] = []
    for entry in manifest.get("documents", []):
        try:
            ref = str(entry["path"])
            if ref.startswith(DATASETS_PREFIX):
                location = datasets_dir / ref[len(DATASETS_PREFIX) :]
                if not location.exists():
                    raise InvalidGoldenSet(
                        f"set {manifest.get('name')!r} needs {location}: pass the shared datasets folder"
                    )
            else:
                location = directory / ref
                if not location.exists():
                    raise InvalidGoldenSet(
                        f"document {entry['id']!r} of {directory.name} is missing at {location}"
                    )
            documents.append(
                SourceDocument(
                    id=entry["id"],
                    path=location,
                    title=entry.get("title"),
                    sha256=entry.get("sha256"),
                    pages=entry.get("pages"),
                )
            )
        except (KeyError, TypeError, ValidationError) as exc:
            raise InvalidGoldenSet(f"{directory / MANIFEST} has a malformed document entry: {exc}") from exc
    questions = directory / str(manifest.get("questions", QUESTIONS))
    records = [_record(questions, f"line {n}", **row) for n, row in _iter_jsonl(questions)]
    return _build(
        name=str(manifest.get("name") or directory.name),
        kind=manifest.get("kind", "qa"),
        records=records,
        documents=documents,
        description=str(manifest.get("description", "")),
        source=str(manifest.get("source", "")),
        license=str(manifest.get("license", "")),
        stats=dict(manifest.get("stats") or {}),
        base_dir=directory,
    )


def list_sets(golden_dir: Path | None = None) -> list[str]:
    """Names of the shipped sets (folders with a manifest)."""
    root = golden_dir or DEFAULT_GOLDEN_DIR
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}")) if root.is_dir() else []


def load_set(
    name_or_path: str | Path, *, golden_dir: Path | None = None, datasets_dir: Path | None = None
) -> GoldenSet:
    """A shipped set by name, or any supported format by path (detected from its layout)."""
    root = golden_dir or DEFAULT_GOLDEN_DIR
    path = Path(name_or_path)
    if not path.exists() and (root / str(name_or_path) / MANIFEST).exists():
        path = root / str(name_or_path)
    if not path.exists():
        known = ", ".join(list_sets(root)) or "none"
        raise GoldenSetNotFound(f"no golden set {str(name_or_path)!r} (shipped sets: {known})")
    if path.is_dir():
        if (path / MANIFEST).exists():
            return load_manifest_set(path, datasets_dir=datasets_dir)
        if (path / "corpus.jsonl").exists():
            return load_beir(path)
        if (path / "annotated_data").is_dir():
            return load_clapnq(path)
        raise InvalidGoldenSet(f"{path} is not a golden set, BEIR or ClapNQ folder")
    if path.suffix == ".json":
        return load_squad(path)
    if path.suffix == ".jsonl":
        first = next(_iter_jsonl(path), (0, {}))[1]
        if "financebench_id" in first:
            return load_financebench(path)
        return load_jsonl(path)
    raise InvalidGoldenSet(f"{path}: unsupported golden-set file (expected .json, .jsonl or a folder)")


# --------------------------------------------------------------------------- writing


def write_set(
    golden: GoldenSet,
    out_dir: Path,
    *,
    external: Mapping[str, str] | None = None,
    stats: Mapping[str, Any] | None = None,
) -> Path:
    """Write a set in the shipped layout. Documents are copied into ``docs/`` unless ``external``
    maps their id to a manifest path (``datasets:...``). Output is byte-for-byte reproducible.
    """
    external = external or {}
    docs_dir = out_dir / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    docs_dir.mkdir(parents=True)
    entries = []
    for doc in golden.documents:
        if not _SAFE_NAME.match(doc.id) or ".." in doc.id:
            raise InvalidGoldenSet(f"document id {doc.id!r} is not a safe file name")
        data = doc.read_bytes()
        if doc.id in external:
            ref = external[doc.id]
        else:
            (docs_dir / doc.id).write_bytes(data)
            ref = f"docs/{doc.id}"
        entry: dict[str, Any] = {"id": doc.id, "path": ref, "sha256": hashlib.sha256(data).hexdigest()}
        entry["bytes"] = len(data)
        if doc.title:
            entry["title"] = doc.title
        if doc.pages:
            entry["pages"] = doc.pages
        entries.append(entry)
    with (out_dir / QUESTIONS).open("w", encoding="utf-8", newline="\n") as fh:
        for record in golden.records:
            row = record.model_dump()
            row["evidence"] = [
                ev.model_dump(exclude={"relevance"} if ev.relevance == 1 else None) for ev in record.evidence
            ]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    manifest = {
        "format": FORMAT,
        "name": golden.name,
        "kind": golden.kind,
        "description": golden.description,
        "source": golden.source,
        "license": golden.license,
        "questions": QUESTIONS,
        "stats": dict(stats or golden.stats),
        "documents": entries,
    }
    path = out_dir / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
