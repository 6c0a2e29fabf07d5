"""Markdown to plain text plus headings.

Markup characters add noise to embeddings and snippets, while headings are worth keeping
as structure for the chunker; so headings are lifted out with their offsets and the
common inline markup is reduced to its text. Code blocks are kept verbatim.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.loaders import LoadedDocument, single_page
from ingest.sniff import decode_text
from rag.settings import Settings
from rag.types import Heading

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_EMPTY_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$")
_TABLE_RULE = re.compile(r"^ *\|?( *:?-{2,}:? *\|)+( *:?-{2,}:? *)?\|? *$")
_LIST_ITEM = re.compile(r"^ {0,3}([-*+]|\d{1,9}[.)])[ \t]")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(
    r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"
)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation
_SHELTER = 0xF0000  # escaped characters hide in a private-use plane while markup is removed
_SHELTERED = re.compile("[\U000f0021-\U000f007e]")
_FRONT_MATTER_TITLE = re.compile(r"^title:\s*['\"]?(.*?)['\"]?\s*$", re.MULTILINE)


def clean_inline(line: str) -> str:
    """Reduce inline markup (images, links, emphasis, code spans, escapes) to its text."""
    line = _ESCAPED.sub(lambda m: chr(_SHELTER + ord(m.group(1))), line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _STRONG.sub(r"\2", line)
    line = _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), line)
    line = _CODE_SPAN.sub(r"\1", line)
    return _SHELTERED.sub(lambda m: chr(ord(m.group(0)) - _SHELTER), line)


def parse_markdown(source: str) -> tuple[str, tuple[Heading, ...], str | None]:
    """Return ``(plain_text, headings, title)``; heading offsets index ``plain_text``.

    The title is the front matter's ``title:`` or else the first level-1 heading.
    """
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    source, front_title = _strip_front_matter(source)
    out: list[str] = []
    headings: list[Heading] = []
    offset = 0  # offset of the next line appended to ``out``
    fence: str | None = None
    paragraph_open = False  # the previous output line is paragraph text (a setext candidate)

    def emit(line: str) -> int:
        nonlocal offset
        start = offset
        out.append(line)
        offset += len(line) + 1
        return start

    for raw in source.split("\n"):
        fence_match = _FENCE.match(raw)
        if fence is not None:
            if (
                fence_match
                and fence_match.group(1)[0] == fence[0]
                and len(fence_match.group(1)) >= len(fence)
            ):
                fence = None
            else:
                emit(raw)
            continue
        if fence_match:
            fence = fence_match.group(1)
            paragraph_open = False
            continue
        setext = _SETEXT.match(raw)
        if setext and paragraph_open and out:
            level = 1 if setext.group(1)[0] == "=" else 2
            headings.append(Heading(offset - len(out[-1]) - 1, out[-1].strip(), level))
            paragraph_open = False
            continue
        if _THEMATIC_BREAK.match(raw) or _TABLE_RULE.match(raw):
            paragraph_open = False
            continue
        atx = _ATX.match(raw) or _EMPTY_ATX.match(raw)
        if atx:
            text = clean_inline(atx.group(2)).strip() if atx.lastindex == 2 else ""
            start = emit(text)
            if text:
                headings.append(Heading(start, text, len(atx.group(1))))
            paragraph_open = False
            continue
        line = clean_inline(raw)
        emit(line)
        paragraph_open = bool(line.strip()) and not _LIST_ITEM.match(raw)
    text = "\n".join(out)
    body = text.lstrip("\n")
    shift = len(text) - len(body)
    shifted = tuple(Heading(h.offset - shift, h.text, h.level) for h in headings)
    title = front_title or next((h.text for h in shifted if h.level == 1), None)
    return body.rstrip(), shifted, title


def _strip_front_matter(source: str) -> tuple[str, str | None]:
    """Drop a leading YAML front-matter block, keeping its ``title:`` if it has one."""
    if not source.startswith("---\n"):
        return source, None
    end = source.find("\n---\n", 4)
    if end < 0 or source.count("\n", 0, end) > 100:
        return source, None
    match = _FRONT_MATTER_TITLE.search(source, 4, end)
    title = match.group(1).strip() if match else None
    return source[end + 5 :], title or None


def load_markdown(path: Path, settings: Settings) -> LoadedDocument:
    """A Markdown file is one page of plain text with its headings."""
    text, headings, title = parse_markdown(decode_text(path.read_bytes()))
    return single_page("markdown", text, title, headings)
