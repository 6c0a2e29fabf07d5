"""Sniffing decides by content: every file here carries a misleading name."""

from __future__ import annotations

import bz2
import contextlib
import io
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from PIL import Image

from ingest.sniff import decode_text, sniff
from rag.errors import CorruptDocument, DocumentError, EmptyDocument, UnsupportedType

KINDS = {"pdf", "png", "jpeg", "tiff", "docx", "html", "markdown", "text"}


def squad_context(datasets: Path) -> str:
    """The first SQuAD paragraph with a few non-ASCII characters that cp1252 and latin-1 can encode."""
    data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            context: str = paragraph["context"]
            if sum(ord(ch) > 127 for ch in context) >= 3 and all(ord(ch) < 256 for ch in context):
                return context
    raise AssertionError("no suitable paragraph")


def test_pdf_named_as_text(tmp_path: Path, datasets: Path) -> None:
    target = tmp_path / "notes.txt"
    shutil.copy(datasets / "financebench" / "pdfs" / "AMCOR_2022_8K_dated-2022-07-01.pdf", target)
    assert sniff(target) == "pdf"


def test_images_by_magic(tmp_path: Path, datasets: Path) -> None:
    receipt = datasets / "sroie_receipts_scanned" / "img" / "000.jpg"
    jpeg = tmp_path / "scan.png"
    shutil.copy(receipt, jpeg)
    assert sniff(jpeg) == "jpeg"
    with Image.open(receipt) as image:
        image.save(tmp_path / "a.jpg", format="PNG")
        image.save(tmp_path / "b.pdf", format="TIFF")
    assert sniff(tmp_path / "a.jpg") == "png"
    assert sniff(tmp_path / "b.pdf") == "tiff"


def test_docx_vs_other_zip(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("hello")
    document.save(str(tmp_path / "report.zip"))
    assert sniff(tmp_path / "report.zip") == "docx"

    with zipfile.ZipFile(tmp_path / "data.docx", "w") as archive:
        archive.writestr("readme.txt", "not a word document")
    with pytest.raises(UnsupportedType) as info:
        sniff(tmp_path / "data.docx")
    assert info.value.code == "unsupported_type"


def test_truncated_docx_is_corrupt(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("hello " * 200)
    buffer = io.BytesIO()
    document.save(buffer)
    (tmp_path / "cut.docx").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(CorruptDocument):
        sniff(tmp_path / "cut.docx")


def test_html_markdown_and_text(tmp_path: Path, datasets: Path) -> None:
    with bz2.open(datasets / "crag_example10" / "dev_data.jsonl.bz2", "rt") as fh:
        record = json.loads(fh.readline())
    html = tmp_path / "page.md"
    html.write_text(record["search_results"][0]["page_result"], encoding="utf-8")
    assert sniff(html) == "html"

    markdown = tmp_path / "readme.txt"
    markdown.write_text("# Title\n\nSome *text* with a [link](http://example.org).\n\n## Part\n\n- item\n")
    assert sniff(markdown) == "markdown"

    text = tmp_path / "page.html"
    text.write_text(squad_context(datasets))
    assert sniff(text) == "text"


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "latin-1"])
def test_non_utf8_text_is_text(tmp_path: Path, datasets: Path, encoding: str) -> None:
    context = squad_context(datasets)
    path = tmp_path / "x.bin"
    path.write_bytes(context.encode(encoding))
    assert sniff(path) == "text"
    assert decode_text(path.read_bytes()) == context


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    with pytest.raises(EmptyDocument) as info:
        sniff(path)
    assert info.value.code == "empty_document"


@pytest.mark.parametrize("blank", [b"   \n\n\t  " * 200, b"\n", b"\r\n \r\n"])
def test_whitespace_only_text_is_empty_not_unsupported(tmp_path: Path, blank: bytes) -> None:
    path = tmp_path / "blank.txt"
    path.write_bytes(blank)
    with pytest.raises(EmptyDocument) as info:
        sniff(path)
    assert info.value.code == "empty_document"


def test_binary_garbage_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(os.urandom(50_000))
    with pytest.raises(UnsupportedType) as info:
        sniff(path)
    assert info.value.code == "unsupported_type"
    assert info.value.status == 415


@pytest.mark.parametrize("byte", [0x00, 0xA5, 0xFF])
def test_repeated_filler_byte_is_not_text(tmp_path: Path, byte: int) -> None:
    path = tmp_path / "wiped.txt"
    path.write_bytes(bytes([byte]) * 4096)
    with pytest.raises(UnsupportedType):
        sniff(path)


def test_gif_and_executable(tmp_path: Path) -> None:
    gif = tmp_path / "a.png"
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    executable = tmp_path / "a.txt"
    executable.write_bytes(Path(sys.executable).read_bytes()[:200_000])
    for path in (gif, executable):
        with pytest.raises(UnsupportedType):
            sniff(path)


@given(st.binary(min_size=0, max_size=4096))
@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "blob"
    path.write_bytes(data)
    with contextlib.suppress(DocumentError):
        assert sniff(path) in KINDS
