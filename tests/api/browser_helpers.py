"""Driving the page at ``/`` in headless Chromium, and checking what it shows.

The tests talk to the page the way a person does (type, click, Tab, Enter) and read back what it
shows from the DOM; checks of the highlighted evidence compare the page's image and rectangles
with word boxes found independently (PDFium, tesseract).
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import REPO

ARTIFACTS = REPO / "test-artifacts" / "browser"
Rect = tuple[float, float, float, float]

# what a document's line may say while it is ingested, and when it is done or failed
STATUS = re.compile(
    r"^(queued|indexing|reading|reading page \d+ of \d+( \(\d+ by OCR\))?|OCR, page \d+ of \d+"
    r"|embedding \d+ chunks?|writing the index|finishing|already in the collection"
    r"|done( \(.*\))?|failed: .+|deleting…)$"
)


def shot(driver: Any, tmp_path: Path, name: str) -> Path:
    """A screenshot under the test's tmp dir, copied to ``test-artifacts/browser/``."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    return path


def wait_for(condition: Callable[[], Any], timeout: float, message: Callable[[], str] | str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message or "timed out")
        time.sleep(0.1)


class Page:
    """The page, as a person uses it."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        self.url = url

    def by_id(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def all(self, css: str, within: Any = None) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list((within or self.driver).find_elements(By.CSS_SELECTOR, css))

    def open(self, key: str, collection: str) -> None:
        from selenium.webdriver.common.keys import Keys

        self.driver.get(self.url + "/")
        assert self.driver.title == "Ask your documents"
        self.by_id("api-key").send_keys(key)
        field = self.by_id("collection")
        field.clear()
        field.send_keys(collection, Keys.ENTER)  # submits the settings: the lists load
        wait_for(lambda: self.by_id("collection").get_attribute("value") == collection, 5)

    def upload(self, paths: list[Path]) -> None:
        self.by_id("files").send_keys("\n".join(str(p) for p in paths))
        self.by_id("upload-btn").click()
        names = [p.name for p in paths]
        wait_for(
            lambda: all(self.document(n) is not None for n in names) or self.by_id("upload-error").text,
            30,
        )
        assert self.by_id("upload-error").text == ""

    # read in one script, so a line the page removes meanwhile cannot go stale half way
    _DOCS_JS = """
    return [...document.querySelectorAll('#documents li.doc-item')].map((li) => [
      li.querySelector('.doc-name').textContent, li.dataset.state,
      li.querySelector('.doc-status').textContent, li]);"""

    def documents(self) -> dict[str, tuple[str, str]]:
        """name -> (data-state, status line) as the documents panel shows them."""
        return {name: (state, status) for name, state, status, _ in self.driver.execute_script(self._DOCS_JS)}

    def document(self, name: str) -> Any:
        """The document's line (an element), or None."""
        for shown, _, _, li in self.driver.execute_script(self._DOCS_JS):
            if shown == name:
                return li
        return None

    def wait_indexed(self, names: list[str], timeout: float = 600) -> list[str]:
        """Waits until every document is done; returns each status line seen on the way."""
        seen: list[str] = []

        def done() -> bool:
            shown = self.documents()
            for name in names:
                if name in shown and shown[name][1] and (not seen or seen[-1] != shown[name][1]):
                    seen.append(shown[name][1])
            failed = [f"{n}: {s}" for n, (state, s) in shown.items() if n in names and state == "failed"]
            assert not failed, failed
            return all(n in shown and shown[n][0] == "indexed" for n in names)

        wait_for(done, timeout, lambda: f"not indexed: {self.documents()}")
        return seen

    def ask(self, question: str, *, submit_with_enter: bool = True, timeout: float = 120) -> Any:
        from selenium.webdriver.common.keys import Keys

        before = len(self.all("#turns li.turn"))
        field = self.by_id("question")
        field.clear()
        if submit_with_enter:
            field.send_keys(question, Keys.ENTER)
        else:
            field.send_keys(question)
            self.by_id("ask-btn").click()
        wait_for(lambda: len(self.all("#turns li.turn")) > before, 30, lambda: self.by_id("ask-error").text)
        turn = self.all("#turns li.turn")[-1]
        wait_for(
            lambda: turn.get_attribute("data-done") in ("true", "error"),
            timeout,
            lambda: f"no answer: {turn.text} {self.by_id('ask-error').text}",
        )
        assert turn.get_attribute("data-done") == "true", (turn.text, self.by_id("ask-error").text)
        return turn

    def open_citation(self, turn: Any, n: int = 1, timeout: float = 60) -> dict[str, str]:
        """Clicks the answer's [n]; waits for the viewer; returns what it shows (its data attributes)."""
        buttons = [
            b for b in self.all(".answer-text button.cite-ref", turn) if b.get_attribute("data-n") == str(n)
        ]
        assert buttons, f"no [{n}] button in the answer: {turn.text}"
        buttons[0].click()
        return self.viewer(timeout)

    def viewer(self, timeout: float = 60) -> dict[str, str]:
        viewer = self.by_id("viewer")
        wait_for(
            lambda: viewer.get_attribute("data-state") in ("loaded", "unavailable", "error"),
            timeout,
            lambda: f"viewer: {viewer.get_attribute('data-state')} {viewer.text}",
        )
        return {
            k: viewer.get_attribute(f"data-{k}") or ""
            for k in ("state", "document", "page", "start", "end", "n")
        }

    def shown_image(self) -> Image.Image:
        """The page image exactly as the page shows it (decoded from the img's data: URL)."""
        src = self.by_id("page-image").get_attribute("src")
        assert src and src.startswith("data:image/png;base64,"), (src or "")[:60]
        return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")

    def shown_marks(self) -> list[Rect]:
        """The outlined highlight rectangles over the image, as fractions of the image."""
        script = """
        const img = document.getElementById('page-image').getBoundingClientRect();
        return [...document.querySelectorAll('#page-marks .mark')].map((m) => {
          const r = m.getBoundingClientRect();
          return [(r.left - img.left) / img.width, (r.top - img.top) / img.height,
                  (r.right - img.left) / img.width, (r.bottom - img.top) / img.height];
        });"""
        return [(r[0], r[1], r[2], r[3]) for r in self.driver.execute_script(script)]

    def no_horizontal_overflow(self) -> tuple[int, int]:
        sizes = self.driver.execute_script(
            "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];"
        )
        assert sizes[0] <= sizes[1] + 1, f"the page scrolls sideways: {sizes}"
        return sizes[0], sizes[1]


def rects_of(layout: dict[str, Any]) -> list[Rect]:
    return [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in layout["highlight"]]


def inside(box: Rect, rects: list[Rect], slack: float = 0.01) -> bool:
    """The box's centre lies in one of the rectangles (fractions of the page)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(r[0] - slack <= cx <= r[2] + slack and r[1] - slack <= cy <= r[3] + slack for r in rects)


def close(a: Rect, b: Rect, tolerance: float) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def yellow_mask(image: Image.Image) -> Image.Image:
    """Pixels the translucent yellow changed: red and green well above blue (white, grey and black
    text are neutral, so only the painted passage, or a page's own colour, passes)."""
    r, g, b = image.split()
    from PIL import ImageChops

    red_over = ImageChops.subtract(r, b).point(lambda v: 255 if v > 60 else 0)
    green_over = ImageChops.subtract(g, b).point(lambda v: 255 if v > 40 else 0)
    return ImageChops.multiply(red_over, green_over)


def yellow_inside(image: Image.Image, rects: list[Rect], slack: float = 0.004) -> tuple[int, int, float]:
    """(yellow pixels, of which inside the rectangles, smallest share of yellow within one rectangle)."""
    mask = yellow_mask(image)
    w, h = image.size
    total = mask.histogram()[255]
    covered = Image.new("L", image.size, 0)
    min_share = 1.0
    for x0, y0, x1, y1 in rects:
        box = (
            max(0, int((x0 - slack) * w)),
            max(0, int((y0 - slack) * h)),
            min(w, int((x1 + slack) * w) + 1),
            min(h, int((y1 + slack) * h) + 1),
        )
        covered.paste(255, box)
        inner = mask.crop(
            (
                int(x0 * w) + 1,
                int(y0 * h) + 1,
                max(int(x0 * w) + 2, int(x1 * w) - 1),
                max(int(y0 * h) + 2, int(y1 * h) - 1),
            )
        )
        min_share = min(min_share, inner.histogram()[255] / max(1, inner.width * inner.height))
    from PIL import ImageChops

    inside_count = ImageChops.multiply(mask, covered).histogram()[255]
    return total, inside_count, min_share


def contrast(fg: tuple[float, ...], bg: tuple[float, ...]) -> float:
    """WCAG contrast ratio of two sRGB colours (0-255)."""

    def lum(c: tuple[float, ...]) -> float:
        parts = []
        for v in c[:3]:
            s = v / 255
            parts.append(s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4)
        return 0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]

    a, b = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


# For each visible element with text: its colour and the first opaque background behind it.
COLOURS_JS = """
const parse = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
const out = [];
for (const node of document.querySelectorAll(arguments[0])) {
  const style = getComputedStyle(node);
  if (!node.offsetParent && style.position !== 'fixed') continue;
  if (!node.textContent.trim()) continue;
  let bg = null;
  for (let e = node; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) { bg = c.slice(0, 3); break; }
  }
  out.push({sel: node.tagName + '.' + node.className + '#' + node.id, fg: parse(style.color),
            bg: bg || [255, 255, 255], opacity: Number(style.opacity)});
}
return out;
"""
