"""A cited passage on its page: ``GET /v1/documents/{id}/pages/{n}`` (PNG) and ``.../layout`` (JSON).

Real pages of a FinanceBench 10-K (text layer), its scanned twin (OCR) and the scan as a PNG
image, through a real ``rag serve``. The highlight is checked against boxes found
independently of the service: PDFium's own text search for the text-layer page, tesseract's
own word table for the scanned page, and the painted pixels of the PNG.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageChops

from ingest.loaders.tesseract import Tesseract
from tests.api.conftest import ALPHA_KEY, BETA_KEY, LiveServer, assert_problem, upload, wait_job

pytestmark = pytest.mark.slow

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
FILING = DATASETS / "financebench" / "pdfs" / "3M_2018_10K.pdf"
SCANNED = DATASETS / "financebench_scanned_evidence" / "pdfs" / "3M_2018_10K_p59.pdf"
CASH_FLOW_PAGE = 59  # zero-based page of the filing that the scan shows
QUESTION = "How much were purchases of property, plant and equipment (PP&E) in 2018?"
Rect = tuple[float, float, float, float]


def _filing_pages(first: int, last: int) -> bytes:
    """Pages ``first..last`` (zero-based) of the real filing, as their own PDF."""
    source = pdfium.PdfDocument(FILING)
    out = pdfium.PdfDocument.new()
    out.import_pages(source, list(range(first, last + 1)))
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


def _scan_as_png() -> bytes:
    page = pdfium.PdfDocument(SCANNED)[0]
    image = page.render(scale=200 / 72).to_pil()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stored(live: LiveServer) -> dict[str, dict[str, Any]]:
    """The three documents, indexed in a collection of their own: name -> document."""
    files = [
        ("3m-cash-flow.pdf", _filing_pages(CASH_FLOW_PAGE - 1, CASH_FLOW_PAGE + 1)),
        ("3m-cash-flow-scanned.pdf", SCANNED.read_bytes()),
        ("3m-cash-flow-scan.png", _scan_as_png()),
        ("notes.txt", b"Plain notes have no pages to render. The pear harvest was early."),
    ]
    with live.client(ALPHA_KEY, timeout=300) as client:
        resp = upload(client, files, collection="pages")
        assert resp.status_code == 202, resp.text
        for item in resp.json()["items"]:
            job = wait_job(client, item["job_id"], timeout=600)
            assert job["state"] == "succeeded", job
        docs = client.get("/v1/documents", params={"collection": "pages"}).json()["documents"]
    return {d["name"]: d for d in docs}


def _cite(client: httpx.Client, document_id: str) -> dict[str, Any]:
    resp = client.post(
        "/v1/query",
        json={"question": QUESTION, "collection": "pages", "filters": {"document_id": document_id}},
    )
    assert resp.status_code == 200, resp.text
    citations = resp.json()["citations"]
    assert citations, resp.json()
    return citations[0]  # type: ignore[no-any-return]


def _distinctive(words: list[str], page_text: str) -> list[str]:
    """Words of the passage that occur once on the page (so a search for them finds them there)."""
    counts: dict[str, int] = {}
    for word in re.findall(r"[A-Za-z]{5,}", page_text):
        counts[word] = counts.get(word, 0) + 1
    return [w for w in dict.fromkeys(words) if counts.get(w) == 1]


def _inside(box: Rect, rects: list[Rect], slack: float = 0.006) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(r[0] - slack <= cx <= r[2] + slack and r[1] - slack <= cy <= r[3] + slack for r in rects)


def _rects(layout: dict[str, Any]) -> list[Rect]:
    return [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in layout["highlight"]]


def _pdfium_word_boxes(pdf: bytes, page_index: int, words: list[str]) -> dict[str, Rect]:
    """Each word's box on the page as PDFium's text search finds it, as fractions of the page."""
    page = pdfium.PdfDocument(pdf)[page_index]
    width, height = page.get_size()
    textpage = page.get_textpage()
    found = {}
    for word in words:
        searcher = textpage.search(word, match_case=True, match_whole_word=True)
        hit = searcher.get_next()
        if hit is None:
            continue
        left, bottom, _, top = textpage.get_charbox(hit[0], loose=True)
        last = textpage.get_charbox(hit[0] + hit[1] - 1, loose=True)
        found[word] = (left / width, 1 - top / height, last[2] / width, 1 - bottom / height)
    return found


def _tesseract_word_boxes(image: Image.Image, words: list[str]) -> dict[str, Rect]:
    """Each word's box as tesseract's own word table places it, for words it reads once on the page."""
    data = Tesseract(thread_limit=1).data(image, "eng", ["--psm", "6"])
    read = [str(text).strip(".,:;()$") for text in data["text"]]
    found: dict[str, Rect] = {}
    for i, word in enumerate(read):
        if word in words and read.count(word) == 1:
            left, top = int(data["left"][i]), int(data["top"][i])
            right, bottom = left + int(data["width"][i]), top + int(data["height"][i])
            found[word] = (left / image.width, top / image.height, right / image.width, bottom / image.height)
    return found


def _painted_bbox(client: httpx.Client, url: str, params: dict[str, Any]) -> tuple[Rect, Image.Image]:
    """The bounding box (fractions) of the pixels the highlight changed, from the PNGs with and without it."""
    plain = client.get(url, params={"width": params["width"]})
    lit = client.get(url, params=params)
    assert plain.status_code == lit.status_code == 200, lit.text
    assert lit.headers["content-type"] == "image/png"
    a, b = (
        Image.open(io.BytesIO(plain.content)).convert("RGB"),
        Image.open(io.BytesIO(lit.content)).convert("RGB"),
    )
    assert a.size == b.size and a.width == params["width"]
    box = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 12 else 0).getbbox()
    assert box is not None, "nothing was highlighted"
    w, h = b.size
    return (box[0] / w, box[1] / h, box[2] / w, box[3] / h), b


def _union(rects: list[Rect]) -> Rect:
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def _close(a: Rect, b: Rect, tolerance: float = 0.01) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_text_layer_citation_is_highlighted_over_its_words(live: LiveServer, stored: dict[str, Any]) -> None:
    doc = stored["3m-cash-flow.pdf"]
    with live.client(ALPHA_KEY) as client:
        citation = _cite(client, doc["id"])
        page = citation["pages"][0]
        url = f"/v1/documents/{doc['id']}/pages/{page}"
        layout = client.get(
            f"{url}/layout", params={"start": citation["char_start"], "end": citation["char_end"]}
        ).json()
        assert layout["source"] == "text-layer" and layout["words"] > 100
        rects = _rects(layout)
        assert rects and layout["text"]
        # the passage's own words, found on the page by PDFium's search, lie under the highlight
        pdf = _filing_pages(CASH_FLOW_PAGE - 1, CASH_FLOW_PAGE + 1)
        page_text = pdfium.PdfDocument(pdf)[page - 1].get_textpage().get_text_range()
        words = _distinctive(re.findall(r"[A-Za-z]{5,}", layout["text"]), page_text)
        boxes = _pdfium_word_boxes(pdf, page - 1, words)
        assert len(boxes) >= 2, (layout["text"], words)
        # (a rewritten table row also names its column headers and units, which sit above the row)
        inside = [w for w, box in boxes.items() if _inside(box, rects)]
        assert len(inside) >= max(2, 0.7 * len(boxes)), (boxes, rects)
        # ... and a word of the page that the passage does not contain is not highlighted
        outside = [
            w
            for w in _distinctive(re.findall(r"[A-Za-z]{5,}", page_text), page_text)
            if w not in layout["text"]
        ]
        stray = _pdfium_word_boxes(pdf, page - 1, outside[:40])
        assert stray and sum(_inside(b, rects, slack=0) for b in stray.values()) <= len(stray) // 10
        # the PNG's painted pixels are where the layout says
        painted, image = _painted_bbox(
            client, url, {"width": 800, "start": citation["char_start"], "end": citation["char_end"]}
        )
        assert _close(painted, _union(rects)), (painted, _union(rects))
        assert abs(image.height - 800 * layout["height"] / layout["width"]) <= 1
        # a chunk id highlights the chunk: at least the cited passage
        by_chunk = _rects(client.get(f"{url}/layout", params={"chunk": citation["chunk_id"]}).json())
        assert all(_inside(((r[0] + r[2]) / 2, (r[1] + r[3]) / 2) * 2, by_chunk) for r in rects)


def test_scanned_citation_is_highlighted_over_tesseract_words(
    live: LiveServer, stored: dict[str, Any]
) -> None:
    doc = stored["3m-cash-flow-scanned.pdf"]
    with live.client(ALPHA_KEY) as client:
        citation = _cite(client, doc["id"])
        url = f"/v1/documents/{doc['id']}/pages/1"
        layout = client.get(
            f"{url}/layout", params={"start": citation["char_start"], "end": citation["char_end"]}
        ).json()
        assert layout["source"] == "ocr"
        rects = _rects(layout)
        assert rects
        page = pdfium.PdfDocument(SCANNED)[0]
        image = page.render(scale=300 / 72, grayscale=True).to_pil()
        words = list(dict.fromkeys(re.findall(r"[A-Za-z]{5,}", layout["text"])))
        boxes = _tesseract_word_boxes(image, words)
        assert len(boxes) >= 2, (layout["text"], words)
        inside = [w for w, box in boxes.items() if _inside(box, rects)]
        assert len(inside) >= max(2, 0.7 * len(boxes)), (layout["text"], boxes, rects)
        painted, _ = _painted_bbox(
            client, url, {"width": 600, "start": citation["char_start"], "end": citation["char_end"]}
        )
        assert _close(painted, _union(rects)), (painted, _union(rects))


def test_an_image_is_its_own_page_with_ocr_boxes(live: LiveServer, stored: dict[str, Any]) -> None:
    doc = stored["3m-cash-flow-scan.png"]
    with live.client(ALPHA_KEY) as client:
        citation = _cite(client, doc["id"])
        url = f"/v1/documents/{doc['id']}/pages/1"
        layout = client.get(f"{url}/layout", params={"chunk": citation["chunk_id"]}).json()
        assert layout["source"] == "ocr" and layout["highlight"]
        painted, image = _painted_bbox(client, url, {"width": 500, "chunk": citation["chunk_id"]})
        assert image.width == 500
        assert _close(painted, _union(_rects(layout)))


def test_bad_requests_and_other_tenants(live: LiveServer, stored: dict[str, Any]) -> None:
    pdf, text = stored["3m-cash-flow.pdf"], stored["notes.txt"]
    url = f"/v1/documents/{pdf['id']}/pages"
    with live.client(ALPHA_KEY) as alpha, live.client(BETA_KEY) as beta:
        assert_problem(beta.get(f"{url}/1"), 404, "not_found")
        assert_problem(beta.get(f"{url}/1/layout"), 404, "not_found")
        assert_problem(alpha.get(f"{url}/4"), 404, "not_found")
        assert_problem(alpha.get(f"{url}/0"), 422, "invalid_request")
        assert_problem(alpha.get(f"{url}/1", params={"width": 5000}), 422, "invalid_request")
        assert_problem(alpha.get(f"{url}/1", params={"start": 10}), 422, "invalid_request")
        assert_problem(alpha.get(f"{url}/1", params={"start": 10, "end": 5}), 422, "invalid_request")
        assert_problem(alpha.get(f"{url}/1", params={"chunk": f"{text['id']}:000000"}), 404, "not_found")
        assert_problem(alpha.get(f"/v1/documents/{text['id']}/pages/1"), 409, "page_not_available")
        assert_problem(alpha.get(f"/v1/documents/{text['id']}/pages/1/layout"), 409, "page_not_available")
        # a passage on another page highlights nothing here; the page still renders
        layout = alpha.get(f"{url}/3/layout", params={"start": 0, "end": 5}).json()
        assert layout["highlight"] == [] and layout["text"] is None
        assert alpha.get(f"{url}/1", params={"width": 100}).status_code == 200


def test_deleting_a_document_removes_its_original_and_pages(live: LiveServer) -> None:
    pdf = _filing_pages(CASH_FLOW_PAGE, CASH_FLOW_PAGE)
    with live.client(ALPHA_KEY) as client:
        item = upload(client, [("one-page.pdf", pdf)], collection="pages-delete").json()["items"][0]
        assert wait_job(client, item["job_id"])["state"] == "succeeded"
        original = live.data_dir / "originals" / item["document_id"]
        assert original.read_bytes() == pdf
        assert client.get(f"/v1/documents/{item['document_id']}/pages/1").status_code == 200
        assert client.delete(f"/v1/documents/{item['document_id']}").status_code == 204
        assert not original.exists()
        assert_problem(client.get(f"/v1/documents/{item['document_id']}/pages/1"), 404, "not_found")
