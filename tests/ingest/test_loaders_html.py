"""HTML from real CRAG search results: main text in, scripts, styles and navigation out."""

from __future__ import annotations

import bz2
import json
from pathlib import Path

import lxml.html
import pytest

from ingest.loaders.html import fallback_text
from rag.settings import Settings

from .conftest import normalize_ws, read_all, word_recall


@pytest.fixture(scope="module")
def crag_results(datasets: Path) -> list[dict]:
    with bz2.open(datasets / "crag_example10" / "dev_data.jsonl.bz2", "rt") as fh:
        records = [json.loads(line) for line in fh]
    return [result for record in records for result in record["search_results"]]


def _non_content_texts(html: str) -> list[str]:
    """Normalized text of every sizeable script, style and nav element of the page."""
    tree = lxml.html.document_fromstring(html)
    texts = [normalize_ws(el.text_content()) for el in tree.iter("script", "style", "nav")]
    return [t for t in texts if len(t) > 40]


def test_first_results_drop_scripts_styles_and_nav(
    crag_results: list[dict], settings: Settings, tmp_path: Path
) -> None:
    pages = [r for r in crag_results if r["page_result"].strip()][::5][:10]
    assert len(pages) == 10
    leaked_checked = 0
    for result in pages:
        path = tmp_path / "page.bin"
        path.write_text(result["page_result"], encoding="utf-8")
        document, loaded = read_all(path, settings)
        assert document.kind == "html" and document.page_count == 1
        assert document.title  # every one of these pages has a <title>
        text = normalize_ws(loaded[0].text)
        for junk in _non_content_texts(result["page_result"]):
            assert junk[:40] not in text, f"{result['page_url']}: leaked {junk[:60]!r}"
            leaked_checked += 1
        page = loaded[0]
        for heading in page.headings:
            assert page.text[heading.offset :].startswith(heading.text)
    assert leaked_checked > 50  # the check above really ran against script/style/nav text


def test_wikipedia_main_text_and_headings(
    crag_results: list[dict], settings: Settings, tmp_path: Path
) -> None:
    result = next(r for r in crag_results if "en.wikipedia.org" in r["page_url"])
    tree = lxml.html.document_fromstring(result["page_result"])
    content = tree.get_element_by_id("mw-content-text")
    for element in content.xpath(".//style|.//script|.//sup"):
        element.drop_tree()
    paragraphs = [normalize_ws(p.text_content()) for p in content.iter("p")]
    gold = " ".join(p for p in paragraphs if len(p) > 100)
    section_titles = {normalize_ws(h.text_content()) for h in content.xpath(".//h2")}

    path = tmp_path / "wiki.html"
    path.write_text(result["page_result"], encoding="utf-8")
    document, pages = read_all(path, settings)
    assert document.title == normalize_ws(tree.findtext(".//title"))
    assert word_recall(gold, pages[0].text) >= 0.95
    found = {h.text for h in pages[0].headings} & section_titles
    assert len(found) >= len(section_titles) // 2


def test_declared_legacy_encoding(settings: Settings, tmp_path: Path) -> None:
    body = "Café society in Zürich — “quoted” prose. " * 20
    html = (
        '<html><head><meta charset="windows-1252"><title>Café</title>'
        '<script>var secret = "tracking-id-1234";</script>'
        f"</head><body><nav>Home About Contact Careers Investors Newsroom</nav><article><h1>Zürich cafés</h1>"
        f"<p>{body}</p></article><footer>Copyright footer text here</footer></body></html>"
    )
    path = tmp_path / "cafe.html"
    path.write_bytes(html.encode("cp1252"))
    document, pages = read_all(path, settings)
    assert document.title == "Café"
    assert normalize_ws(body) in normalize_ws(pages[0].text)
    assert "tracking-id" not in pages[0].text
    assert "Careers Investors" not in pages[0].text


def test_fallback_walk_keeps_visible_text_only() -> None:
    tree = lxml.html.document_fromstring(
        "<html><head><title>T</title><style>.a{color:red}</style></head><body>"
        "<nav><a href='/'>Home</a> <a href='/x'>Menu</a></nav>"
        "<h2>Opening hours</h2><p>Open <b>daily</b> from nine.</p><script>track()</script>"
        "<ul><li>Mon</li><li>Tue</li></ul><footer>legal</footer></body></html>"
    )
    text, headings = fallback_text(tree)
    assert text.split("\n") == ["Opening hours", "Open daily from nine.", "Mon", "Tue"]
    assert [(h.offset, h.text, h.level) for h in headings] == [(0, "Opening hours", 2)]
