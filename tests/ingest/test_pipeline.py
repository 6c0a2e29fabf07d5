"""Ingestion end to end: real loaders, chunker, embedder, Chroma and lexical index."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from rag.errors import RagError
from rag.index.store import open_store
from service.runtime import Runtime


def squad_texts(datasets: Path, n: int) -> list[str]:
    data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    return [p["context"] for a in data["data"] for p in a["paragraphs"]][:n]


def snapshot(runtime: Runtime) -> dict:
    stats = runtime.index.stats()["collections"]
    return {"stats": stats, "docs": sorted(d.id for d in runtime.index.catalog.documents())}


@pytest.mark.slow
def test_ingest_is_idempotent_and_replaces_versions(settings, datasets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    texts = squad_texts(datasets, 3)
    path = tmp_path / "article.txt"
    path.write_text(texts[0] + "\n\n" + texts[1])
    with Runtime(settings) as rt:
        first = rt.ingestion.ingest_file(path)
        assert not first.duplicate and first.chunks >= 2 and first.pages == 1
        again = rt.ingestion.ingest_file(path)
        assert again.duplicate and again.document.id == first.document.id
        assert rt.index.stats()["collections"]["default"]["chunks"] == first.chunks

        path.write_text(texts[2])  # same name, new content: replaces in one step
        second = rt.ingestion.ingest_file(path)
        assert second.document.id != first.document.id
        docs = rt.index.catalog.documents("default")
        assert [d.id for d in docs] == [second.document.id]
        stats = rt.index.stats()["collections"]["default"]
        assert stats["consistent"] and stats["chunks"] == second.chunks

        # the same bytes in another collection are a separate document
        other = rt.ingestion.ingest_file(path, collection="other")
        assert not other.duplicate and other.document.id != second.document.id


def _bad_inputs(tmp_path: Path, datasets: Path) -> dict[str, Path]:
    pdf = next((datasets / "financebench" / "pdfs").glob("*.pdf"))
    files: dict[str, Path] = {}
    files["empty_document"] = tmp_path / "empty.txt"
    files["empty_document"].write_bytes(b"")
    raw = pdf.read_bytes()
    files["corrupt_document"] = tmp_path / "truncated.pdf"
    files["corrupt_document"].write_bytes(raw[: len(raw) // 3])
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    buf = io.BytesIO()
    writer.write(buf)
    files["encrypted_document"] = tmp_path / "locked.pdf"
    files["encrypted_document"].write_bytes(buf.getvalue())
    giant = PdfWriter()
    giant.add_blank_page(width=20000, height=20000)
    buf = io.BytesIO()
    giant.write(buf)
    files["page_too_large"] = tmp_path / "giant.pdf"
    files["page_too_large"].write_bytes(buf.getvalue())
    many = PdfWriter()
    reader = PdfReader(pdf)
    for page in reader.pages[:6]:
        many.add_page(page)
    buf = io.BytesIO()
    many.write(buf)
    files["too_many_pages"] = tmp_path / "long.pdf"
    files["too_many_pages"].write_bytes(buf.getvalue())
    files["unsupported_type"] = tmp_path / "garbage.pdf"
    rng = random.Random(7)
    files["unsupported_type"].write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    return files


@pytest.mark.slow
def test_bad_input_gets_its_code_and_leaves_the_index_unchanged(make_settings, datasets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(max_pdf_pages=5)
    good = tmp_path / "good.txt"
    good.write_text(squad_texts(datasets, 1)[0])
    with Runtime(settings) as rt:
        rt.ingestion.ingest_file(good)
        before = snapshot(rt)
        for code, path in _bad_inputs(tmp_path, datasets).items():
            with pytest.raises(RagError) as err:
                rt.ingestion.ingest_file(path)
            assert err.value.code == code, (path.name, err.value.code, err.value.message)
            assert snapshot(rt) == before
        # non-UTF-8 text is not an error: it is read in its own encoding
        latin = tmp_path / "latin1.txt"
        latin.write_bytes("Le café de la gare ouvre à sept heures. Ça coûte deux euros.".encode("cp1252"))
        result = rt.ingestion.ingest_file(latin)
        stored = rt.index.get([f"{result.document.id}:000000"])
        assert "café" in stored[0].chunk.text


def test_cli_reports_failures_with_codes(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    garbage = tmp_path / "in" / "x.pdf"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\x00\x01garbage" * 100)
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    env = {**os.environ, "RAG_DATA_DIR": str(settings.data_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "cli", "ingest", str(garbage.parent), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout)
    assert {f["code"] for f in summary["failed"]} == {"unsupported_type", "empty_document"}
    assert summary["documents"] == 0 and "Traceback" not in out.stderr


_CRASH_SCRIPT = """
import sys
from pathlib import Path
from service.runtime import Runtime
from rag.settings import load_settings
settings = load_settings(data_dir=Path(sys.argv[1]), embedding_model=sys.argv[2], reranker="none")
said = []
def progress(p):
    # "embedding": once batches are stored while more are being embedded
    if p.stage == "embedding" and rt.index.vectors.count("default") < 64:
        return
    if p.stage == sys.argv[4] and not said:
        said.append(p.stage)
        print(p.stage, flush=True)
with Runtime(settings) as rt:
    rt.ingestion.ingest_file(Path(sys.argv[3]), progress=progress)
print("done", flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_write_leaves_whole_document_or_none(
    settings, tiny_embedding_model, datasets, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    texts = squad_texts(datasets, 400)
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join(texts))  # ~450 chunks: Chroma's add takes a while
    outcomes = []
    # killed while batches are being stored and the next embedded, then in the switch
    for stage, delay in (("embedding", 0.0), ("indexing", 0.05), ("indexing", 0.4), ("indexing", 1.2)):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CRASH_SCRIPT,
                str(settings.data_dir),
                tiny_embedding_model,
                str(big),
                stage,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == stage, line
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        tiny = settings.model_copy(update={"embedding_model": tiny_embedding_model})
        if stage == "embedding":  # what the dead process left, before a writer's recovery sees it
            left = open_store(tiny, writer=False)
            try:
                assert left.vectors.count("default") >= 64 and left.catalog.documents("default") == []
                assert [d.state for d in left.catalog.documents(state=None)] == ["writing"]
            finally:
                left.close()
        index = open_store(tiny)
        try:
            stats = index.stats()["collections"].get("default")
            docs = index.catalog.documents("default")
            if docs:
                assert len(docs) == 1 and stats is not None
                assert stats["chroma_chunks"] == stats["lexical_chunks"] == docs[0].chunks > 300
                outcomes.append("whole")
                index.delete(docs[0].id)  # start the next round from nothing
            else:
                assert stats is None or (stats["chroma_chunks"] == 0 and stats["lexical_chunks"] == 0)
                outcomes.append("none")
        finally:
            index.close()
    assert outcomes[0] == "none", outcomes  # vectors were stored, the document never switched on
    assert "none" in outcomes[1:]  # at least one kill landed inside the switch
