"""The page at ``/`` in headless Chromium against a real ``rag serve``.

A person's use of it: upload real documents (a filing's text-layer pages and a scanned page) and
watch them reach "done"; ask in a conversation; click an answer's [1] and see the cited page with
the passage highlighted, checked against word boxes found independently of the service (PDFium's
text search, tesseract's own word table) and against the yellow pixels of the image the page
shows. Hostile file names and long passages stay text and do not break the layout; the page works
from the keyboard; and it keeps following a job through a 429. Screenshots are kept under
``test-artifacts/browser/``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest

from ingest.loaders.tesseract import Tesseract
from tests.api.browser_helpers import (
    COLOURS_JS,
    STATUS,
    Page,
    close,
    contrast,
    inside,
    rects_of,
    shot,
    wait_for,
    yellow_inside,
)
from tests.api.conftest import ADMIN_KEY, ALPHA_KEY, LiveServer, upload, wait_job
from tests.api.pdfgen import make_pdf
from tests.conftest import DATASETS

pytestmark = pytest.mark.slow

FILING = DATASETS / "financebench" / "pdfs" / "3M_2018_10K.pdf"
FILING_PAGES = (58, 60)  # zero-based: the cash flow statement (59) and its neighbours
SCANNED = DATASETS / "financebench_scanned_evidence" / "pdfs" / "FOOTLOCKER_2022_8K_dated_2022-08-19_p1.pdf"
PPE_QUESTION = "How much were purchases of property, plant and equipment (PP&E) in 2018?"
CEO_QUESTION = "Who was named Foot Locker's new chief executive officer?"
Rect = tuple[float, float, float, float]


def _filing_pages() -> bytes:
    source = pdfium.PdfDocument(FILING)
    out = pdfium.PdfDocument.new()
    out.import_pages(source, list(range(FILING_PAGES[0], FILING_PAGES[1] + 1)))
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def page(live: LiveServer, browser: Any) -> Page:
    browser.set_window_size(1400, 1000)
    return Page(browser, live.url)


def _metric(live: LiveServer, name: str, label: str) -> float:
    with live.client(ADMIN_KEY) as admin:
        text = admin.get("/metrics").text
    found = [
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name) and label in line
    ]
    return sum(found)


def _distinctive(words: list[str], page_text: str) -> list[str]:
    """Words of the passage that occur once on the page (so a search finds them there)."""
    counts: dict[str, int] = {}
    for word in re.findall(r"[A-Za-z]{5,}", page_text):
        counts[word] = counts.get(word, 0) + 1
    return [w for w in dict.fromkeys(words) if counts.get(w) == 1]


def _pdfium_word_boxes(pdf: bytes, page_index: int, words: list[str]) -> dict[str, Rect]:
    """Each word's box as PDFium's own text search finds it, as fractions of the page (top-left origin)."""
    pdf_page = pdfium.PdfDocument(pdf)[page_index]
    width, height = pdf_page.get_size()
    textpage = pdf_page.get_textpage()
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


def _tesseract_passage_boxes(pdf: Path, passage: str) -> dict[str, Rect]:
    """The boxes of the passage's words in tesseract's own word table of the scan, as fractions of
    the page: the run of words tesseract reads that best matches the passage (its words may occur
    elsewhere on the page too, so they are found in sequence, not one by one)."""
    image = pdfium.PdfDocument(pdf)[0].render(scale=300 / 72, grayscale=True).to_pil()
    data = Tesseract(thread_limit=1).data(image, "eng", ["--psm", "6"])
    norm = [re.sub(r"[^a-z0-9]", "", str(t).lower()) for t in data["text"]]
    indexes = [i for i, t in enumerate(norm) if t]
    read = [norm[i] for i in indexes]
    wanted = [w for w in (re.sub(r"[^a-z0-9]", "", t.lower()) for t in passage.split()) if w]
    best, best_at = 0, 0
    for at in range(len(read)):
        hits = sum(1 for j, w in enumerate(wanted) if at + j < len(read) and read[at + j] == w)
        if hits > best:
            best, best_at = hits, at
    assert best >= 0.6 * len(wanted), (best, wanted, read)
    found: dict[str, Rect] = {}
    for j, word in enumerate(wanted):
        if best_at + j >= len(read) or read[best_at + j] != word or len(word) < 5:
            continue
        i = indexes[best_at + j]
        left, top = int(data["left"][i]), int(data["top"][i])
        right, bottom = left + int(data["width"][i]), top + int(data["height"][i])
        found[f"{j}:{word}"] = (
            left / image.width,
            top / image.height,
            right / image.width,
            bottom / image.height,
        )
    return found


def _check_shown_highlight(page: Page, layout: dict[str, Any]) -> None:
    """The page shows the service's highlight: outlined where the layout says, painted yellow there."""
    rects = rects_of(layout)
    marks = page.shown_marks()
    assert len(marks) == len(rects)
    for mark, rect in zip(marks, rects, strict=True):
        assert close(mark, rect, 0.01), (mark, rect)
    image = page.shown_image()
    assert abs(image.height - image.width * layout["height"] / layout["width"]) <= 2
    yellow, within, min_share = yellow_inside(image, rects)
    assert yellow > 200, "no highlighted pixels in the page image"
    assert within >= 0.97 * yellow, (within, yellow, rects)  # the yellow is the passage's ...
    assert min_share >= 0.25, (min_share, rects)  # ... and each of its rectangles is painted


def test_cited_pages_show_the_passage_highlighted(live: LiveServer, page: Page, tmp_path: Path) -> None:
    filing = tmp_path / "3m-cash-flow.pdf"
    filing.write_bytes(_filing_pages())
    scanned = tmp_path / "footlocker-ceo-scan.pdf"
    scanned.write_bytes(SCANNED.read_bytes())
    page.open(ALPHA_KEY, "evidence")
    assert page.by_id("documents-empty").is_displayed()

    page.upload([filing, scanned])  # one upload, two files
    seen = page.wait_indexed([filing.name, scanned.name])
    assert all(STATUS.match(s) for s in seen), seen
    shown = page.documents()
    assert re.fullmatch(r"done \(3 pages, \d+ chunks?\)", shown[filing.name][1]), shown
    assert re.fullmatch(r"done \(1 page, 1 OCR, \d+ chunks?\)", shown[scanned.name][1]), shown
    shot(page.driver, tmp_path, "evidence-1-documents")
    with live.client(ALPHA_KEY) as client:
        ids = {
            d["name"]: d["id"]
            for d in client.get("/v1/documents", params={"collection": "evidence"}).json()["documents"]
        }

    # --- a text-layer filing: the highlight covers the cited words, as PDFium finds them
    turn = page.ask(PPE_QUESTION)
    assert turn.get_attribute("data-abstained") == "false", turn.text
    assert page.all(".citations li.citation", turn)
    shown_cite = page.open_citation(turn, 1)
    assert shown_cite["state"] == "loaded", shown_cite
    assert shown_cite["document"] == ids[filing.name]
    assert "3m-cash-flow.pdf" in page.by_id("viewer-caption").text
    assert page.by_id("page-image").get_attribute("data-loaded") == "true"
    shot(page.driver, tmp_path, "evidence-2-text-layer-page")
    number = int(shown_cite["page"])
    params = {"start": shown_cite["start"], "end": shown_cite["end"]}
    with live.client(ALPHA_KEY) as client:
        layout = client.get(f"/v1/documents/{ids[filing.name]}/pages/{number}/layout", params=params)
        assert layout.status_code == 200, layout.text
    layout_body = layout.json()
    assert layout_body["source"] == "text-layer" and layout_body["highlight"], layout_body
    rects = rects_of(layout_body)
    pdf = filing.read_bytes()
    page_text = pdfium.PdfDocument(pdf)[number - 1].get_textpage().get_text_range()
    words = _distinctive(re.findall(r"[A-Za-z]{5,}", layout_body["text"]), page_text)
    boxes = _pdfium_word_boxes(pdf, number - 1, words)
    assert len(boxes) >= 2, (layout_body["text"], words)
    covered = [w for w, box in boxes.items() if inside(box, rects)]
    assert len(covered) >= max(2, 0.7 * len(boxes)), (boxes, rects)
    _check_shown_highlight(page, layout_body)
    page.by_id("viewer-close").click()
    assert not page.by_id("viewer").is_displayed()

    # --- a scanned page (OCR): the highlight covers the cited words, as tesseract reads them
    turn = page.ask(CEO_QUESTION)
    assert turn.get_attribute("data-abstained") == "false", turn.text
    shown_cite = page.open_citation(turn, 1)
    assert shown_cite["state"] == "loaded", shown_cite
    assert shown_cite["document"] == ids[scanned.name], (shown_cite, turn.text)
    shot(page.driver, tmp_path, "evidence-3-ocr-page")
    params = {"start": shown_cite["start"], "end": shown_cite["end"]}
    with live.client(ALPHA_KEY) as client:
        layout = client.get(f"/v1/documents/{ids[scanned.name]}/pages/1/layout", params=params)
        assert layout.status_code == 200, layout.text
    layout_body = layout.json()
    assert layout_body["source"] == "ocr" and layout_body["highlight"], layout_body
    rects = rects_of(layout_body)
    boxes = _tesseract_passage_boxes(SCANNED, layout_body["text"])
    assert len(boxes) >= 2, (layout_body["text"], boxes)
    covered = [w for w, box in boxes.items() if inside(box, rects)]
    assert len(covered) >= max(2, 0.7 * len(boxes)), (layout_body["text"], boxes, rects)
    _check_shown_highlight(page, layout_body)

    # --- feedback on the answer is recorded
    before = _metric(live, "rag_answer_feedback_total", 'rating="up"')
    thumbs_up = next(b for b in page.all(".feedback-btn", turn) if b.get_attribute("data-rating") == "up")
    thumbs_up.click()
    wait_for(lambda: thumbs_up.get_attribute("aria-pressed") == "true", 20, lambda: turn.text)
    assert _metric(live, "rag_answer_feedback_total", 'rating="up"') == before + 1

    # --- the conversation is kept: reopen it from the list, its answers and citations are back
    page.by_id("new-conversation").click()
    assert not page.all("#turns li.turn") and not page.by_id("viewer").is_displayed()
    entry = wait_for(
        lambda: [b for b in page.all("#conversations .conv-open") if PPE_QUESTION[:40] in b.text], 20
    )[0]
    entry.click()
    wait_for(lambda: len(page.all("#turns li.turn[data-done=true]")) == 2, 20)
    assert entry.get_attribute("aria-current") == "true" or page.all(".conv-open[aria-current=true]")
    first, second = page.all("#turns li.turn")
    assert PPE_QUESTION in first.text and CEO_QUESTION in second.text
    reopened = page.open_citation(first, 1)
    assert reopened["state"] == "loaded" and reopened["document"] == ids[filing.name]
    shot(page.driver, tmp_path, "evidence-4-reopened")


HOSTILE_NAME = "<img src=x onerror=alert(1)><script>alert(2)<b>report.txt"  # no '/': a file name
LONG_NAME = "annual-report-of-the-orchard-cooperative-" * 4 + "x" * 32 + ".txt"  # 200 characters
PASSAGE = (  # one sentence of over 1,000 characters, markup and a 400-character token inside
    "The lighthouse keeper's ledger records that the keeper painted the boat a deep cobalt blue "
    "every spring, <script>alert(3)</script> <img src=x onerror=alert(4)> "
    + ", and ".join(
        f"the {w} of the harbour lamp was checked in the {m} watch"
        for w, m in [
            ("wick", "first"),
            ("glass", "second"),
            ("oil", "third"),
            ("brass", "fourth"),
            ("lens", "fifth"),
            ("chain", "sixth"),
            ("clock", "seventh"),
            ("bell", "eighth"),
            ("door", "ninth"),
            ("stair", "tenth"),
        ]
    )
    + ", with the reference "
    + "0123456789abcdef" * 25
    + " written beside it and signed by the keeper Elias Trevenna\n"
)


def test_hostile_names_and_long_passages_render_as_text(live: LiveServer, page: Page, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    assert len(LONG_NAME) == 200 and len(PASSAGE) >= 1000
    hostile = tmp_path / HOSTILE_NAME
    hostile.write_text(PASSAGE)
    long_named = tmp_path / LONG_NAME
    long_named.write_text(PASSAGE.replace("cobalt blue", "signal red") + " Harbour annex copy.")
    page.open(ALPHA_KEY, "safety")
    scripts = len(page.all("script"))
    page.upload([hostile, long_named])
    page.wait_indexed([HOSTILE_NAME, LONG_NAME], timeout=180)
    shown = page.documents()
    assert set(shown) == {HOSTILE_NAME, LONG_NAME}  # the names, character for character, as text
    page.no_horizontal_overflow()

    turn = page.ask("What colour did the keeper paint the boat every spring?")
    names = [e.text for e in page.all(".citation .doc", turn)]
    assert names and set(names) <= {HOSTILE_NAME, LONG_NAME}, names
    snippets = [e.text for e in page.all(".citation .snippet", turn)]
    assert any("cobalt blue" in s or "signal red" in s for s in snippets), snippets
    # the whole passage of over 1,000 characters is quoted in the answer: as text, markup and all
    answer = turn.find_element("css selector", ".answer-text").text
    assert " ".join(PASSAGE.split()) in " ".join(answer.split()), answer
    # the citation of a text document has no page image: the viewer shows the passage instead
    shown_cite = page.open_citation(turn, 1)
    assert shown_cite["state"] == "unavailable", shown_cite
    assert "no page images" in page.by_id("viewer-message").text
    assert page.by_id("viewer-snippet").text == snippets[0]
    shot(page.driver, tmp_path, "safety-1-wide")

    for width in (1400, 900, 420):
        page.driver.set_window_size(width, 900)
        time.sleep(0.3)
        page.no_horizontal_overflow()
        shot(page.driver, tmp_path, f"safety-2-width-{width}")
    page.driver.set_window_size(1400, 1000)

    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text  # noqa: B018
    assert len(page.all("script")) == scripts  # nothing was injected
    assert len(page.all("img")) == 1 and page.all("#page-image")  # only the viewer's own image
    assert not page.all(".answer-text b, .snippet b, .doc-name b, #documents img, #turns img")

    # deleting asks first; keeping it keeps it, confirming deletes it everywhere
    li = page.document(LONG_NAME)
    li.find_element("css selector", ".doc-delete").click()
    dialog = page.by_id("confirm-dialog")
    assert dialog.is_displayed() and LONG_NAME in dialog.text
    page.by_id("confirm-cancel").click()
    assert not dialog.is_displayed() and page.document(LONG_NAME) is not None
    li.find_element("css selector", ".doc-delete").click()
    shot(page.driver, tmp_path, "safety-3-confirm-delete")
    page.by_id("confirm-ok").click()
    wait_for(lambda: page.document(LONG_NAME) is None, 30)
    with live.client(ALPHA_KEY) as client:
        left = client.get("/v1/documents", params={"collection": "safety"}).json()["documents"]
    assert [d["name"] for d in left] == [HOSTILE_NAME]
    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text  # noqa: B018


def _focused(page: Page) -> Any:
    return page.driver.switch_to.active_element


def _focus_ring(page: Page, element: Any) -> tuple[str, float]:
    style = page.driver.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, parseFloat(s.outlineWidth)];",
        element,
    )
    return style[0], style[1]


def test_keyboard_only_ask_cite_and_reopen(live: LiveServer, page: Page, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    with live.client(ALPHA_KEY) as client:
        document = make_pdf(
            [
                "Orchard log, spring. The pear trees were pruned in March.",
                "Orchard log, autumn. The quince harvest of the west orchard weighed 412 kilograms.",
            ]
        )
        item = upload(client, [("orchard.pdf", document)], collection="keyboard").json()["items"][0]
        assert wait_job(client, item["job_id"])["state"] == "succeeded"

    driver = page.driver
    driver.get(live.url + "/")

    def press(*keys: str) -> None:
        ActionChains(driver).send_keys(*keys).perform()

    # Tab from the start: the skip link, then the key field
    press(Keys.TAB)
    assert _focused(page).get_attribute("class") == "skip-link"
    press(Keys.TAB)
    assert _focused(page).get_attribute("id") == "api-key"
    press(ALPHA_KEY, Keys.TAB)
    assert _focused(page).get_attribute("id") == "collection"
    field = _focused(page)
    field.send_keys(Keys.CONTROL, "a")
    press("keyboard", Keys.ENTER)
    wait_for(lambda: page.document("orchard.pdf") is not None, 20, lambda: page.by_id("global-error").text)
    wait_for(lambda: page.documents()["orchard.pdf"][0] == "indexed", 30)

    # Tab through the page to the question; every stop shows a focus ring
    for _ in range(40):
        press(Keys.TAB)
        focused = _focused(page)
        style, width = _focus_ring(page, focused)
        assert style != "none" and width >= 2, (focused.get_attribute("outerHTML")[:120], style, width)
        if focused.get_attribute("id") == "question":
            break
    else:
        raise AssertionError("the question field is not reachable by Tab")
    press("How much did the quince harvest weigh?", Keys.ENTER)
    turn = wait_for(
        lambda: page.all("#turns li.turn[data-done=true]"), 120, lambda: page.by_id("ask-error").text
    )[0]
    assert "412" in turn.find_element("css selector", ".answer-text").text
    assert turn.find_element("css selector", ".answer-text").get_attribute("aria-live") == "polite"
    assert page.by_id("question").get_attribute("value") == ""

    # back (Shift+Tab) from the question to the answer's citations
    reached = None
    for _ in range(30):
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        focused = _focused(page)
        if "cite-" in (focused.get_attribute("class") or ""):
            reached = focused
            if "cite-ref" in (focused.get_attribute("class") or ""):
                break
    assert reached is not None, "no citation is reachable by keyboard"
    style, width = _focus_ring(page, reached)
    assert style != "none" and width >= 2
    label = reached.get_attribute("aria-label")
    assert label.startswith("Source 1: orchard.pdf"), label
    press(Keys.ENTER)
    shown = page.viewer()
    assert shown["state"] == "loaded" and shown["page"] == "2", shown
    assert _focused(page).get_attribute("id") == "viewer-title"
    assert reached.get_attribute("aria-expanded") == "true"
    shot(driver, tmp_path, "keyboard-1-viewer")
    press(Keys.ESCAPE)
    assert not page.by_id("viewer").is_displayed()
    assert _focused(page) == reached  # focus comes back to the citation

    # feedback from the keyboard
    thumbs_down = next(b for b in page.all(".feedback-btn", turn) if b.get_attribute("data-rating") == "down")
    for _ in range(30):
        press(Keys.TAB)
        if _focused(page) == thumbs_down:
            break
    assert _focused(page) == thumbs_down
    press(Keys.SPACE)
    wait_for(lambda: thumbs_down.get_attribute("aria-pressed") == "true", 20)

    # every form control is labelled; text meets WCAG AA contrast
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('input, textarea, select')].filter("
        "(e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id);"
    )
    assert unlabelled == []
    unnamed = driver.execute_script(
        "return [...document.querySelectorAll('button')].filter("
        "(b) => !(b.getAttribute('aria-label') || b.textContent.trim())).map((b) => b.outerHTML);"
    )
    assert unnamed == []
    low = []
    for item in driver.execute_script(
        COLOURS_JS,
        "label, .hint, button, .doc-status, .doc-name, .answer-text, .snippet, .answer-meta, h1, h2, h3",
    ):
        ratio = contrast(tuple(item["fg"]), tuple(item["bg"]))
        if ratio < 4.5:
            low.append((item["sel"], round(ratio, 2)))
    assert not low, low
    shot(driver, tmp_path, "keyboard-2-answer")


POLITE_KEY = "polite-key-0123456789abcdef"


@pytest.fixture
def rate_limited(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path / "var", {"RAG_API_KEYS": f"{POLITE_KEY}:polite", "RAG_RATE_LIMIT_PER_MINUTE": "6"}, "polite"
    )
    server.start()
    yield server
    server.stop()


def test_the_page_keeps_following_a_job_through_a_429(
    rate_limited: LiveServer, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    document = tmp_path / "ledger.pdf"  # long enough that the job is still running when polls get 429
    document.write_bytes(
        make_pdf(
            [
                f"Ledger page {n}. The west orchard sold {n * 7} crates of pears to buyer {n}."
                for n in range(80)
            ]
        )
    )
    driver.get(rate_limited.url + "/")
    driver.find_element(By.ID, "api-key").send_keys(POLITE_KEY)
    driver.find_element(By.ID, "files").send_keys(str(document))
    driver.find_element(By.ID, "upload-btn").click()
    job = WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#documents li.doc-item[data-state]")
    )[0]
    assert job.get_attribute("data-state") in ("queued", "indexing")
    with rate_limited.client(POLITE_KEY) as client:  # the same key: the page's next polls get 429
        assert any(client.get("/v1/documents").status_code == 429 for _ in range(8))
    WebDriverWait(driver, 30).until(lambda d: job.get_attribute("data-waiting") == "true")
    assert job.get_attribute("data-state") in ("queued", "indexing")  # a 429 is "later", not "failed"
    assert "Progress paused" in driver.find_element(By.ID, "documents-poll").text
    WebDriverWait(driver, 120).until(lambda d: job.get_attribute("data-state") in ("indexed", "failed"))
    assert job.get_attribute("data-state") == "indexed", job.text
    assert job.find_element(By.CSS_SELECTOR, ".doc-status").text.startswith("done (80 pages")
    assert job.get_attribute("data-waiting") == "false"
    assert "status=429" in rate_limited.log_text()
