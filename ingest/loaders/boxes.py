"""A text layer's character boxes -> the word boxes of its cleaned text (``rag.layout``).

Cleaning (``pdf.clean_text_layer``) only changes whitespace and drops NULs, so the cleaned
text's visible characters are the raw text's, in order: walking both at once pairs every
visible character with its PDFium box. PDFium's own generated characters (line breaks, the
spaces it infers) have no box and are never part of a word. Costs about 10 ms a page of a
10-K here (one ``FPDFText_GetLooseCharBox`` call per visible character), beside ~0.5 s of
embedding for the same page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.layout import PageLayout, Rect

_WORD = re.compile(r"\S+")


def _visible(ch: str) -> bool:
    return not ch.isspace() and ch != "\x00"


def align_words(
    clean: str, raw: str, char_rects: Sequence[Rect | None], width: float, height: float
) -> PageLayout | None:
    """Word boxes of ``clean`` from the boxes of ``raw``'s characters; ``None`` if the two texts'
    visible characters differ (then the page has no layout rather than a wrong one)."""
    if len(char_rects) != len(raw):
        return None
    raw_visible = [i for i, ch in enumerate(raw) if _visible(ch)]
    source: dict[int, int] = {}  # clean offset -> raw index
    k = 0
    for i, ch in enumerate(clean):
        if not _visible(ch):
            continue
        if k >= len(raw_visible) or raw[raw_visible[k]] != ch:
            return None
        source[i] = raw_visible[k]
        k += 1
    words = []
    for match in _WORD.finditer(clean):
        rects = [r for i in range(match.start(), match.end()) if (r := char_rects[source[i]]) is not None]
        if not rects:
            continue
        words.append(
            (
                match.start(),
                match.end(),
                (
                    min(r[0] for r in rects),
                    min(r[1] for r in rects),
                    max(r[2] for r in rects),
                    max(r[3] for r in rects),
                ),
            )
        )
    return PageLayout.from_words(width, height, words)


__all__ = ["align_words"]
