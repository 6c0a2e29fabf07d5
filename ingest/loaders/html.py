"""HTML -> the page's main text (no scripts, styles, navigation or boilerplate) as one page.

trafilatura finds the main content; when it finds nothing (tiny or unusual pages) a plain
walk over the tree, minus the non-content elements, is better than losing the document.
"""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import trafilatura
from lxml import etree

from ingest.loaders import LoadedDocument, single_page
from ingest.loaders.markdown import parse_markdown
from ingest.loaders.text import normalize_newlines
from ingest.sniff import decode_text
from rag.errors import NoTextFound
from rag.settings import Settings
from rag.types import Heading

_NON_CONTENT = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
    "form", "button", "select", "svg", "iframe", "object", "embed", "canvas", "head",
)  # fmt: skip
_BLOCKS = frozenset((
    "address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
    "hr", "li", "main", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
))  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SPACES = re.compile(r"\s+")


def load_html(path: Path, settings: Settings) -> LoadedDocument:
    """Extract the main text and headings; the title comes from ``<title>``."""
    source = normalize_newlines(decode_text(path.read_bytes()))
    tree = _parse(source)
    title = _title(tree)
    extracted = trafilatura.extract(
        source,
        output_format="markdown",
        include_formatting=True,
        include_comments=False,
        include_tables=True,
        include_links=False,
        include_images=False,
    )
    if extracted and extracted.strip():
        text, headings, _ = parse_markdown(extracted)
    else:
        text, headings = fallback_text(tree)
    return single_page("html", text, title, headings)


def _parse(source: str) -> lxml.html.HtmlElement:
    # lxml refuses str input that carries an XML encoding declaration.
    source = re.sub(r"^\s*<\?xml[^>]*>", "", source)
    try:
        return lxml.html.document_fromstring(source)
    except (etree.ParserError, ValueError) as exc:
        raise NoTextFound("The HTML page has no readable content") from exc


def _title(tree: lxml.html.HtmlElement) -> str | None:
    for candidate in (
        tree.findtext(".//title"),
        *tree.xpath("//meta[@property='og:title']/@content"),
        *(h.text_content() for h in tree.iter("h1")),
    ):
        text = _SPACES.sub(" ", str(candidate or "")).strip()
        if text:
            return text
    return None


def fallback_text(tree: lxml.html.HtmlElement) -> tuple[str, tuple[Heading, ...]]:
    """Visible text of the page in reading order, one line per block, headings recorded."""
    for element in list(tree.iter(*_NON_CONTENT)):
        if element.getparent() is not None:
            element.drop_tree()
    blocks: list[tuple[str, int]] = []  # (text, heading level or 0)
    buffer: list[str] = []

    def flush() -> None:
        text = _SPACES.sub(" ", "".join(buffer)).strip()
        buffer.clear()
        if text:
            blocks.append((text, 0))

    def walk(element: etree._Element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _HEADINGS:
            flush()
            text = _SPACES.sub(" ", element.text_content()).strip()
            if text:
                blocks.append((text, _HEADINGS[tag]))
        elif tag:
            if tag in _BLOCKS:
                flush()
            buffer.append(element.text or "")
            for child in element:
                walk(child)
            if tag in _BLOCKS:
                flush()
        buffer.append(element.tail or "")

    body = tree.find("body")
    walk(body if body is not None else tree)
    flush()
    lines: list[str] = []
    headings: list[Heading] = []
    offset = 0
    for text, level in blocks:
        if level:
            headings.append(Heading(offset, text, level))
        lines.append(text)
        offset += len(text) + 1
    return "\n".join(lines), tuple(headings)
