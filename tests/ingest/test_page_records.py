"""Pages as the catalog keeps them: the text chunk offsets index, and boxes for its words."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from ingest.loaders.boxes import align_words
from rag.settings import Settings
from rag.types import PAGE_SEPARATOR
from service.runtime import Runtime

pytestmark = pytest.mark.slow


def _pages_of(source: Path, first: int, last: int) -> bytes:
    out = pdfium.PdfDocument.new()
    out.import_pages(pdfium.PdfDocument(source), list(range(first, last + 1)))
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


def test_stored_pages_are_the_text_chunks_index_with_boxes_for_every_word(
    settings: Settings, datasets: Path, tmp_path: Path
) -> None:
    path = tmp_path / "3m-statements.pdf"  # the balance sheet and cash flow pages: tables rewritten
    path.write_bytes(_pages_of(datasets / "financebench" / "pdfs" / "3M_2018_10K.pdf", 57, 59))
    with Runtime(settings) as rt:
        result = rt.ingestion.ingest_file(path, collection="records")
        doc = result.document
        pages = [rt.index.page(doc.id, n) for n in range(1, doc.pages + 1)]
        assert all(p is not None for p in pages)
        text = PAGE_SEPARATOR.join(p.text for p in pages if p is not None)
        assert "Purchases of property, plant and equipment (PP&E): 2018: (1,577)" in text  # rewritten
        chunks = [s.chunk for s in rt.index.get([f"{doc.id}:{n:06d}" for n in range(doc.chunks)])]
        for chunk in chunks:  # a chunk's text ends with its span of the document text
            assert chunk.text.endswith(text[chunk.char_start : chunk.char_end]), chunk.id
        for page in pages:  # every word of the stored text has a box (a rewritten row's words: the row's)
            assert page is not None and page.layout is not None
            covered = [False] * len(page.text)
            for start, end, (x0, y0, x1, y1) in page.layout.words():
                assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
                covered[start:end] = [True] * (end - start)
            missing = [
                m.group() for m in re.finditer(r"\S+", page.text) if not all(covered[m.start() : m.end()])
            ]
            assert not missing, missing[:10]
        assert rt.index.originals.get(doc.id) is not None
        assert rt.index.originals.get(doc.id).read_bytes() == path.read_bytes()  # type: ignore[union-attr]


def test_words_align_with_the_raw_characters_whatever_the_cleaning() -> None:
    raw = "Net  sales\r\n\r\n\r\n\x00grew 12%  \r\n"
    rects = [
        None if ch.isspace() or ch == "\x00" else (i / 40, 0.1, (i + 1) / 40, 0.2) for i, ch in enumerate(raw)
    ]
    clean = "Net  sales\n\ngrew 12%"
    layout = align_words(clean, raw, rects, 612, 792)
    assert layout is not None
    assert [(clean[s:e], round(r[0] * 40), round(r[2] * 40)) for s, e, r in layout.words()] == [
        ("Net", 0, 3),
        ("sales", 5, 10),
        ("grew", 17, 21),
        ("12%", 22, 25),
    ]
    assert align_words("Net sales grow", raw, rects, 612, 792) is None  # other characters: no layout
    assert align_words(clean, raw, rects[:-1], 612, 792) is None  # boxes that do not fit the text
