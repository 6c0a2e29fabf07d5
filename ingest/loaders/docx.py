"""Word .docx -> one page of paragraphs and tables in reading order, headings from styles."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.budget import package_budget
from ingest.loaders import LoadedDocument, single_page
from rag.errors import CorruptDocument, ResourceLimit
from rag.settings import Settings
from rag.types import Heading

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def load_docx(path: Path, settings: Settings) -> LoadedDocument:
    """Paragraphs and table rows become lines; ``Heading n``/``Title`` styles become headings."""
    data = path.read_bytes()
    _check_inflated_size(data, settings)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = _blocks(document)
    except Exception as exc:  # python-docx surfaces zip, XML and packaging errors alike
        raise CorruptDocument("The Word document cannot be read") from exc
    lines: list[str] = []
    headings: list[Heading] = []
    offset = 0
    for text, level in blocks:
        if not text:
            continue
        if level:
            headings.append(Heading(offset, text, level))
        lines.append(text)
        offset += len(text) + 1
    title = (document.core_properties.title or "").strip() or (headings[0].text if headings else None)
    return single_page("docx", "\n".join(lines), title, tuple(headings))


def _check_inflated_size(data: bytes, settings: Settings) -> None:
    """A .docx is a ZIP: refuse a zip bomb by the sizes its entries state, before python-docx
    inflates it into memory (zipfile stops an entry that inflates past its stated size)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise CorruptDocument("The Word document is not a valid ZIP package") from exc
    limit = package_budget(len(data), settings)
    if inflated > limit:
        raise ResourceLimit(
            f"The Word document inflates to {inflated:,} bytes from {len(data):,}"
            f" (limit {limit:,}: RAG_MAX_INFLATION={settings.max_inflation:g} times its size)",
            limit="inflation",
        )


def _blocks(document: DocxDocument) -> list[tuple[str, int]]:
    """``(text, heading_level)`` per paragraph or table row; level 0 is body text."""
    blocks: list[tuple[str, int]] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            blocks.append((item.text.strip(), _heading_level(item)))
        elif isinstance(item, Table):
            blocks.extend((row, 0) for row in _table_rows(item))
    return blocks


def _heading_level(paragraph: Paragraph) -> int:
    try:
        name = paragraph.style.name if paragraph.style is not None else ""
    except (KeyError, ValueError):  # a style id that the styles part does not define
        return 0
    if name == "Title":
        return 1
    match = _HEADING_STYLE.match(name or "")
    return int(match.group(1)) if match else 0


def _table_rows(table: Table) -> list[str]:
    """One line per row, cells joined by `` | ``; merged cells repeat in python-docx, so dedupe."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[object] = set()  # holding the elements keeps their lxml proxies stable
        for cell in row.cells:
            if cell._tc in seen:
                continue
            seen.add(cell._tc)
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
