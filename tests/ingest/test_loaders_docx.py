"""DOCX made with python-docx: headings from styles, tables as rows, title from properties."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pytest

from rag.errors import CorruptDocument, ResourceLimit
from rag.settings import Settings

from .conftest import read_all


def make_docx(path: Path, title: str | None = "Quarterly report") -> None:
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("Overview", level=1)
    document.add_paragraph("Revenue grew in every region during the quarter.")
    document.add_heading("Regional results", level=2)
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate(
        [("Region", "Revenue", "Growth"), ("Europe", "1,200", "4%"), ("Asia", "900", "7%")]
    ):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = table.add_row()
    merged.cells[0].merge(merged.cells[2]).text = "Total 2,100"
    document.add_paragraph("Outlook remains cautious.")
    document.save(str(path))


def test_headings_tables_and_title(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "report.bin"
    make_docx(path)
    document, pages = read_all(path, settings)
    assert (document.kind, document.page_count, document.title) == ("docx", 1, "Quarterly report")
    page = pages[0]
    assert page.text.split("\n") == [
        "Overview",
        "Revenue grew in every region during the quarter.",
        "Regional results",
        "Region | Revenue | Growth",
        "Europe | 1,200 | 4%",
        "Asia | 900 | 7%",
        "Total 2,100",
        "Outlook remains cautious.",
    ]
    assert [(h.text, h.level) for h in page.headings] == [("Overview", 1), ("Regional results", 2)]
    for heading in page.headings:
        assert page.text[heading.offset :].startswith(heading.text)


def test_title_falls_back_to_first_heading(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "untitled.docx"
    make_docx(path, title=None)
    document, _ = read_all(path, settings)
    assert document.title == "Overview"


def test_damaged_part_is_corrupt(tmp_path: Path, settings: Settings) -> None:
    source = tmp_path / "ok.docx"
    make_docx(source)
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[: len(data) // 2] if item.filename == "word/document.xml" else data)
    with pytest.raises(CorruptDocument) as info:
        read_all(broken, settings)
    assert info.value.code == "corrupt_document"


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    source = tmp_path / "ok.docx"
    make_docx(source)
    bomb = tmp_path / "bomb.docx"
    buffer = io.BytesIO(source.read_bytes())
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/padding.bin", b"\0" * (21 * 1024 * 1024))
    bomb.write_bytes(buffer.getvalue())
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ResourceLimit) as info:  # past the 16 MB floor and 100x its size
        read_all(bomb, make_settings())
    assert (info.value.code, info.value.extra["limit"]) == ("resource_limit", "inflation")
    with pytest.raises(ResourceLimit):  # past 20x the upload limit, whatever the ratio allows
        read_all(bomb, make_settings(max_upload_mb=1, max_inflation=10_000))
    read_all(bomb, make_settings(max_inflation=10_000))  # a ratio that allows it reads it
