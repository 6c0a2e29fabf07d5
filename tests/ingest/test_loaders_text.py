"""Plain text and Markdown: any encoding decodes to the same text; Markdown headings are kept."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from ingest.loaders import load_document
from ingest.loaders.markdown import parse_markdown
from rag.errors import DocumentError, EmptyDocument
from rag.settings import Settings

from .conftest import read_all


def squad_contexts(datasets: Path) -> list[str]:
    data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    return [p["context"] for a in data["data"] for p in a["paragraphs"]]


def covid_context(datasets: Path, encodable_in: str) -> str:
    """The first COVID-QA paper with non-ASCII characters, all encodable in ``encodable_in``."""
    data = json.loads((datasets / "covidqa_deepset_200423" / "200423_covidQA.json").read_text())
    for article in data["data"]:
        context: str = article["paragraphs"][0]["context"]
        if any(ord(ch) > 127 for ch in context):
            try:
                context.encode(encodable_in)
            except UnicodeEncodeError:
                continue
            return context
    raise AssertionError("no suitable paper")


def non_ascii_squad(datasets: Path) -> str:
    return next(
        c for c in squad_contexts(datasets) if sum(ord(ch) > 127 for ch in c) >= 3 and max(map(ord, c)) < 256
    )


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "latin-1", "utf-16", "utf-8-sig"])
def test_squad_context_in_any_encoding(
    tmp_path: Path, datasets: Path, settings: Settings, encoding: str
) -> None:
    context = non_ascii_squad(datasets)
    path = tmp_path / "context.txt"
    path.write_bytes(context.encode(encoding))
    document, pages = read_all(path, settings)
    assert (document.kind, document.page_count, document.title) == ("text", 1, None)
    assert [(p.page_no, p.source, p.ocr_confidence) for p in pages] == [(1, "text", None)]
    assert pages[0].text == context.strip()


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16"])
def test_covid_paper_in_any_encoding(
    tmp_path: Path, datasets: Path, settings: Settings, encoding: str
) -> None:
    context = covid_context(datasets, "cp1252")
    path = tmp_path / "paper.txt"
    path.write_bytes(context.encode(encoding))
    _, pages = read_all(path, settings)
    assert pages[0].text == context.strip()


def test_shift_jis_and_windows_line_endings(tmp_path: Path, settings: Settings) -> None:
    text = (
        "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。\r\n"
        "江戸時代には徳川幕府が置かれ、明治維新の後に東京と改名されました。\r\n"
    )
    path = tmp_path / "tokyo.txt"
    path.write_bytes(text.encode("shift_jis"))
    _, pages = read_all(path, settings)
    assert pages[0].text == text.replace("\r\n", "\n").strip()


def test_whitespace_only_text_is_empty(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\n\t \n")
    with pytest.raises(EmptyDocument) as info:
        load_document(path, settings)
    assert info.value.code == "empty_document"


MARKDOWN = """---
title: Field notes
---
Intro paragraph with a [link](https://example.org) and **bold** words.

# Normans

The Normans were the people who gave their name to Normandy.

Conquest of England
-------------------

```python
# not a heading
x = 1
```

### Legacy ###

| a | b |
|---|---|
| 1 | 2 |
"""


def test_markdown_headings_offsets_and_title(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "notes.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    document, pages = read_all(path, settings)
    assert (document.kind, document.title) == ("markdown", "Field notes")
    page = pages[0]
    assert [(h.text, h.level) for h in page.headings] == [
        ("Normans", 1),
        ("Conquest of England", 2),
        ("Legacy", 3),
    ]
    for heading in page.headings:
        assert page.text[heading.offset : heading.offset + len(heading.text)] == heading.text
    assert "# not a heading" in page.text  # code blocks are verbatim
    assert "with a link and bold words" in page.text
    assert "](" not in page.text and "**" not in page.text and "---" not in page.text
    assert "title:" not in page.text


def test_markdown_title_falls_back_to_first_h1() -> None:
    text, headings, title = parse_markdown("\n\nIntro\n\n## Minor\n\n# Major\n\nbody\n")
    assert title == "Major"
    assert [h.level for h in headings] == [2, 1]
    assert text.startswith("Intro")
    assert all(text[h.offset :].startswith(h.text) for h in headings)


_PREFIXES = st.sampled_from(
    [
        "",
        "<html>",
        "<!doctype html><html><body><h1>",
        "# T\n\n",
        "<p>",
        "---\ntitle: x\n",
        "```\n",
        "A\n===\n",
    ]
)


@given(
    _PREFIXES,
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=400),
    st.sampled_from(["utf-8", "utf-16", "cp1252"]),
)
@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_loads_or_fails_cleanly(
    tmp_path: Path, settings: Settings, prefix: str, body: str, enc: str
) -> None:
    """Text-like input of any shape gives pages whose heading offsets hold, or a DocumentError."""
    try:
        data = (prefix + body).encode(enc)
    except UnicodeEncodeError:
        return
    path = tmp_path / "input"
    path.write_bytes(data)
    with contextlib.suppress(DocumentError):
        for page in read_all(path, settings)[1]:
            assert page.page_no == 1 and page.source == "text" and page.text.strip()
            for heading in page.headings:
                assert page.text[heading.offset :].startswith(heading.text)
