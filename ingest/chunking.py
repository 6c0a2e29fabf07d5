"""Pages -> overlapping, sentence-aware chunks with exact character offsets.

How a document is cut, coarsest first:

* **Blocks.** Blank lines, list-item starts and the start/end of every known heading are
  hard boundaries: no sentence crosses them (tables, lists and headings stay apart).
* **Sentences.** Each block is segmented with pysbd. pysbd rewrites text internally, so its
  sentences are only used as boundary hints and located in the original text; whatever it
  loses or mangles is merged into a neighbouring sentence, so the sentences always partition
  the non-whitespace of the page. Single line breaks are shown to pysbd as spaces (same
  length, so offsets stay exact): PDF and OCR text wraps lines mid-sentence.
* **Oversized sentences** (tables, OCR noise) are cut at their line breaks, then into windows
  of whole tiktoken tokens; nothing is ever dropped.
* **Packing.** Sentences are packed greedily up to ``chunk_tokens`` tiktoken tokens; the next
  chunk starts with the last whole sentences of the previous one that fit in
  ``overlap_tokens``. Every chunk is also checked against the embedder's own limit
  (``model_max_tokens`` in the model's tokens, once per chunk) and shrunk if it is over.

Page boundaries: a chunk may run across a page break (the sentence may continue on the next
page), but when the chunk is already at least half full and the page ends with a finished
sentence, the chunk ends there and the next one starts on the new page without overlap, so
most chunks cite a single page. A heading starting a new section is treated the same way.

**Tables** (``tables=True``, ``RAG_TABLES``): each page's text first goes through
``ingest.tables.read_tables``, which rewrites table rows with their column labels
(``Label: 2018: (1,577); 2017: (1,373) (Millions)``); offsets index that rewritten text,
which is what chunks store. A table is a block: its title and header lines and its first
row are one unit, each further row (with the section labels above it) another, a table
starts a new chunk if it fits in one but not in what is left of the current one, and table
rows are never overlap. A table longer than a chunk is cut between rows, and every piece
but the first starts with the table's title and header lines again, or its header lines
alone when the title would take more than a third of a chunk (so its text is that header,
a line break, then the span ``char_start``..``char_end``).

**Context headers** (``context_headers=True``, ``RAG_CONTEXT_HEADERS``): every chunk gets a
``context`` of at most ``CONTEXT_TOKENS`` tokens: the document's profile
(``ingest.profile``), the table title or heading path, and the page (``3M COMPANY 10-K
fiscal year ended December 31, 2018 (FY2018) | Consolidated Statement of Cash Flows |
page 60``). ``Chunk.indexed_text`` (context, line break, text) is what is embedded and
keyword-indexed, and it is what is checked against the embedder's limit, so the header
always fits beside the text; ``text`` stays clean for display and citations.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pysbd.lang.english import English
from pysbd.processor import Processor

from ingest.profile import DocumentProfile
from ingest.tables import Table, read_tables
from rag.errors import ConfigurationError, DocumentError
from rag.tokens import get_encoding
from rag.types import PAGE_SEPARATOR, Chunk, Page, chunk_id, indexed_text

if TYPE_CHECKING:
    from rag.embedder import Embedder
    from rag.settings import Settings

__all__ = ["CHUNKS_REVISION", "CONTEXT_TOKENS", "Chunker", "sentence_spans"]

CHUNKS_REVISION = 2
"""Raised whenever the same bytes under the same settings are chunked differently (2: table
titles above a units line broken word by word). Evaluation names its collections with it, so a
run never scores chunks an older chunker made."""

MIN_CHUNK_TOKENS = 16
CONTEXT_TOKENS = 40
"""Longest context header, in tiktoken tokens (the document's description gets at most
``_DESCRIBE_TOKENS`` of it, the page its own few, the section the rest)."""
_DESCRIBE_TOKENS = 24
_MIN_MODEL_WITH_CONTEXT = 64
_SOFT_BREAK_FILL = 0.5  # a page/section break ends a chunk once it is this full
_MAX_PYSBD_CHARS = 4000  # pysbd is super-linear on long inputs; larger pieces are cut first


class _English(English):  # type: ignore[misc]  # pysbd ships no type hints
    """pysbd's English with its numbered-reference regex made linear.

    The upstream pattern backtracks exponentially on digit runs after a period
    (pySBD issues #58, #79: ``"..[111 111 111 ...]"`` never returns). Wrapping the repeated
    group in an atomic group keeps the matches identical and the time linear.
    """

    NUMBERED_REFERENCE_REGEX = (
        r"(?<=[^\d\s])(\.|∯)((\[((?>\d{1,3},?\s?-?\s?))*\b\d{1,3}\])+|((\d{1,3}\s?)?\d{1,3}))(\s)(?=[A-Z])"
    )


_ABBREVIATIONS = frozenset(a.strip().lower() for a in English.Abbreviation.ABBREVIATIONS)
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_LIST_ITEM = re.compile(r"\n(?=[^\S\n]*(?:[-*+•‣◦▪●–]|\(?\d{1,3}[.)]|\(?[a-zA-Z]\))\s)")
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+")
# pysbd splits on every line break (and str.splitlines characters); show them as spaces.
_AS_SPACES = str.maketrans(dict.fromkeys("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029", " "))
# A boundary pysbd would certainly make: an ordinary word (or a closing bracket/percent) ending
# in terminal punctuation, then whitespace and a capital. Cutting there first keeps pysbd's
# inputs short, which is most of its cost.
_CONFIDENT_BOUNDARY = re.compile(
    r"(?:\b([A-Za-z][a-z]{2,})|[)\]%]\s?)[.!?][\"'”’)\]]*(\s+)(?=[\"'“‘(\[]?[A-Z])"
)
# Terminal punctuation followed by space inside a piece: only then is pysbd needed at all.
_INNER_TERMINAL = re.compile(r"[.!?。．！？][\"'”’)\]]*\s")
_ENDS_SENTENCE = re.compile(r"[.!?。．！？…][\"'”’)\]]*\Z")
_WS_RUN = re.compile(r"\s+")


# --- sentences -------------------------------------------------------------------------


def sentence_spans(text: str, breaks: Iterable[int] = ()) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` of each sentence of ``text``, in order.

    Spans never start or end with whitespace, never overlap, and together contain every
    non-whitespace character of ``text``. ``breaks`` are extra offsets no sentence may cross.
    """
    cuts = sorted({b for b in breaks if 0 < b < len(text)})
    pos = 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        yield from _block_sentences(text, pos, m.start(), cuts)
        pos = m.end()
    yield from _block_sentences(text, pos, len(text), cuts)


def _block_sentences(text: str, start: int, end: int, cuts: list[int]) -> Iterator[tuple[int, int]]:
    bounds = [m.start() for m in _LIST_ITEM.finditer(text, start, end)]
    lo, hi = bisect_left(cuts, start + 1), bisect_left(cuts, end)
    if hi > lo:
        bounds = sorted({*bounds, *cuts[lo:hi]})
    for s, e in zip([start, *bounds], [*bounds, end], strict=True):
        s, e = _trim(text, s, e)
        if s < e:
            yield from _segment(text, s, e)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _segment(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Sentences of one block: confident cuts first, pysbd only where it has a decision to make."""
    view = text[start:end].translate(_AS_SPACES)
    piece_start = 0
    for m in _CONFIDENT_BOUNDARY.finditer(view):
        word = m.group(1)
        if word is not None and word.lower() in _ABBREVIATIONS:
            continue
        yield from _segment_piece(view, piece_start, m.start(2), start)
        piece_start = m.end(2)
    yield from _segment_piece(view, piece_start, len(view), start)


def _segment_piece(view: str, start: int, end: int, base: int) -> Iterator[tuple[int, int]]:
    piece = view[start:end]
    if not _INNER_TERMINAL.search(piece):
        yield base + start, base + end
        return
    for w_start, w_end in _char_windows(piece, _MAX_PYSBD_CHARS):
        window = piece[w_start:w_end]
        cursor = 0
        for sentence in Processor(window, _English).process():
            found = sentence.strip()
            at = window.find(found, cursor) if found else -1
            if at < 0:
                continue  # mangled by pysbd: it joins the next sentence found
            s, e = _trim(window, cursor, at + len(found))
            if s < e:
                yield base + start + w_start + s, base + start + w_start + e
            cursor = at + len(found)
        s, e = _trim(window, cursor, len(window))
        if s < e:
            yield base + start + w_start + s, base + start + w_start + e


def _char_windows(text: str, size: int) -> Iterator[tuple[int, int]]:
    """Cut a long string at whitespace into pieces of at most about ``size`` characters."""
    start = 0
    while len(text) - start > size:
        cut = text.rfind(" ", start + size // 2, start + size)
        end = cut if cut > start else start + size
        yield start, end
        start = end
    yield start, len(text)


# --- chunking ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TableRef:
    """What every unit of one table shares: its title, and the header repeated atop its pieces."""

    title: str
    prefix: str  # the title and header lines, or the header lines alone, or "" (none fits)
    prefix_tokens: int
    tokens: int  # the whole table


@dataclass(slots=True)
class _Unit:
    """One sentence (or piece of one, or table row) located in the document text."""

    start: int
    end: int
    text: str
    gap: str  # the whitespace between the previous unit and this one
    page_no: int
    tokens: int
    whole: bool  # a whole sentence or line, so it may be repeated as overlap
    soft_break: bool  # a page or section starts here: a good place to end a chunk
    table: _TableRef | None = None
    table_head: bool = False  # the table's title and header lines (and its first row)


class Chunker:
    """Splits a stream of pages into ``Chunk`` objects; safe to share between threads."""

    def __init__(
        self,
        *,
        chunk_tokens: int,
        overlap_tokens: int,
        encoding: str = "cl100k_base",
        model_token_counter: Callable[[str], int] | None = None,
        model_max_tokens: int | None = None,
        tables: bool = False,
        context_headers: bool = False,
        embed_context: bool = False,
    ) -> None:
        """``context_headers`` gives each chunk its header for the lexical index; ``embed_context``
        has the embedder see it too."""
        if chunk_tokens < MIN_CHUNK_TOKENS:
            raise ConfigurationError(f"chunk_tokens must be at least {MIN_CHUNK_TOKENS}, got {chunk_tokens}")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ConfigurationError(
                f"overlap_tokens must be >= 0 and below chunk_tokens ({chunk_tokens}), got {overlap_tokens}"
            )
        if (model_token_counter is None) != (model_max_tokens is None):
            raise ConfigurationError("model_token_counter and model_max_tokens go together")
        if model_max_tokens is not None and model_max_tokens < MIN_CHUNK_TOKENS:
            raise ConfigurationError(f"model_max_tokens must be at least {MIN_CHUNK_TOKENS}")
        if context_headers and model_max_tokens is not None and model_max_tokens < _MIN_MODEL_WITH_CONTEXT:
            raise ConfigurationError(
                f"context headers need an embedder window of at least {_MIN_MODEL_WITH_CONTEXT} tokens"
            )
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self._encoding = get_encoding(encoding)
        self._model_count = model_token_counter
        self._model_max = model_max_tokens
        self._soft_min = int(chunk_tokens * _SOFT_BREAK_FILL)
        self.tables = tables
        self.context_headers = context_headers
        self.embed_context = embed_context
        # a small embedder window leaves less room for the header
        self._context_tokens = (
            CONTEXT_TOKENS if model_max_tokens is None else min(CONTEXT_TOKENS, model_max_tokens // 5)
        )

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None) -> Chunker:
        return cls(
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
            encoding=settings.tiktoken_encoding,
            model_token_counter=embedder.count_tokens if embedder is not None else None,
            model_max_tokens=embedder.max_tokens if embedder is not None else None,
            tables=settings.tables,
            context_headers=settings.context_headers != "off",
            embed_context=settings.context_headers == "both",
        )

    def count(self, text: str) -> int:
        """Tiktoken length, special-token text counted as ordinary text."""
        return len(self._encoding.encode_ordinary(text))

    def chunk(
        self, doc_id: str, pages: Iterable[Page], profile: DocumentProfile | None = None
    ) -> Iterator[Chunk]:
        """Chunks in document order, ordinals 0.., reading ``pages`` lazily.

        Offsets index the document text: every page's text (with its tables rewritten when
        ``tables`` is on) joined by ``PAGE_SEPARATOR``, empty pages included. A document
        without text yields no chunks. ``profile`` names the document in context headers.
        """
        if not doc_id:
            raise DocumentError("a document id is required to chunk a document")
        headings: deque[tuple[int, str, int]] = deque()
        incoming = self._units(pages, headings)
        pending: deque[_Unit] = deque()  # units handed back by a chunk that had to shrink
        buf: list[_Unit] = []
        carried = 0  # how many units at the head of buf are overlap from the previous chunk
        ordinal = 0
        heading: str | None = None
        path: list[tuple[int, str]] = []  # (level, title) of the open headings
        describe = ""
        if profile is not None:
            describe = self._clip(profile.describe(), min(_DESCRIBE_TOKENS, self._context_tokens * 3 // 5))

        def context_of(units: list[_Unit]) -> str:
            if not self.context_headers:
                return ""
            table = next((u.table for u in units if u.table is not None), None)
            if table is not None and table.title:
                section = table.title
            else:  # the heading path, less the document's title (already in the description)
                titles = [t for _, t in _path_at(path, headings, units[0].start)]
                section = " > ".join(t for t in titles if t.lower() != describe.lower())
            return self._context(describe, section, units[0].page_no, units[-1].page_no)

        def emit(keep_overlap: bool) -> Chunk:
            nonlocal buf, carried, ordinal, heading, path
            text, tokens, context = self._fit(buf, carried, pending, context_of)
            while headings and headings[0][0] <= buf[0].start:
                _, heading, level = headings.popleft()
                path = [*(p for p in path if p[0] < level), (level, heading)]
            chunk = Chunk(
                id=chunk_id(doc_id, ordinal),
                doc_id=doc_id,
                ordinal=ordinal,
                text=text,
                page_start=buf[0].page_no,
                page_end=buf[-1].page_no,
                char_start=buf[0].start,
                char_end=buf[-1].end,
                token_count=tokens,
                heading=heading,
                context=context,
                context_embedded=self.embed_context and bool(context),
            )
            ordinal += 1
            buf = self._overlap(buf) if keep_overlap else []
            carried = len(buf)
            return chunk

        while True:
            unit = pending.popleft() if pending else next(incoming, None)
            if unit is None:
                if len(buf) > carried:
                    yield emit(keep_overlap=True)
                    continue  # emitting may have handed units back
                break
            fresh = len(buf) > carried
            if fresh and unit.table is None and _prefix(buf) is not None:
                pending.appendleft(unit)  # the rest of a split table: text after it starts afresh
                yield emit(keep_overlap=False)
                continue
            if fresh and unit.soft_break and _size(buf) >= self._soft_min:
                pending.appendleft(unit)
                yield emit(keep_overlap=False)
                continue
            if (
                fresh
                and unit.table_head
                and unit.table is not None
                and unit.table.tokens <= self.chunk_tokens < _size(buf) + unit.table.tokens
            ):
                pending.appendleft(unit)  # the whole table fits in a chunk of its own
                yield emit(keep_overlap=False)
                continue
            if fresh and _size_with(buf, unit) > self.chunk_tokens:
                pending.appendleft(unit)
                yield emit(keep_overlap=True)
                continue
            while buf and _size_with(buf, unit) > self.chunk_tokens:
                buf.pop(0)  # the overlap gives way to new text
                carried -= 1
            buf.append(unit)

    def _table_prefix(self, table: Table) -> str:
        """What a split table's later pieces repeat: its title and header lines, or the header
        lines alone, whichever first takes at most a third of a chunk (else nothing)."""
        for prefix in (table.header, table.column_header):
            tokens = self.count(prefix)
            if tokens > self.chunk_tokens // 3 or self.chunk_tokens - tokens - 1 < MIN_CHUNK_TOKENS:
                continue
            if self._model_count is not None and self._model_count(prefix) > (self._model_max or 0) // 3:
                continue
            return prefix
        return ""

    # --- context headers ---------------------------------------------------------------

    def _context(self, describe: str, section: str, page_start: int, page_end: int) -> str:
        """``describe | section | page N``, at most ``CONTEXT_TOKENS`` tokens (fewer for a small embedder)."""
        page = f"page {page_start}" if page_start == page_end else f"pages {page_start}-{page_end}"
        section = " ".join(section.split())
        used = self.count(" | ".join(p for p in (describe, page) if p))
        if section:
            section = self._clip(section, self._context_tokens - used - 2)
        return " | ".join(p for p in (describe, section, page) if p)

    def _clip(self, text: str, limit: int) -> str:
        """``text`` cut to at most ``limit`` tokens, at a word boundary."""
        text = " ".join(text.split())
        if limit <= 0:
            return ""
        tokens = self._encoding.encode_ordinary(text)
        if len(tokens) <= limit:
            return text
        cut = self._encoding.decode(tokens[:limit])
        space = cut.rfind(" ")
        return (cut[:space] if space > 0 else cut).rstrip(" ,;:|-")

    # --- packing helpers ---------------------------------------------------------------

    def _fit(
        self,
        buf: list[_Unit],
        carried: int,
        pending: deque[_Unit],
        context_of: Callable[[list[_Unit]], str],
    ) -> tuple[str, int, str]:
        """Shrink ``buf`` in place until it fits both limits; hand removed units back.

        The chunk's text (with a table's repeated header when it starts inside a table) must
        be within ``chunk_tokens``; its indexed text (context header and text) within the
        embedder's limit. Returns ``(text, tokens, context)``.
        """
        while True:
            ref = _prefix(buf)
            body = _join(buf)
            text = f"{ref.prefix}\n{body}" if ref is not None else body
            context = context_of(buf)
            tokens = self.count(text)
            over_model = 0
            if tokens <= self.chunk_tokens and self._model_count is not None:
                assert self._model_max is not None
                model_tokens = self._model_count(indexed_text(text, context) if self.embed_context else text)
                if model_tokens > self._model_max:
                    over_model = model_tokens
            if tokens <= self.chunk_tokens and not over_model:
                return text, tokens, context
            # Aim below the limit in proportion to the overshoot, to avoid one retry per unit.
            target = _estimate(buf) * (self._model_max or 1) / over_model if over_model else self.chunk_tokens
            shrunk = False
            while len(buf) - carried > 1 and (not shrunk or _estimate(buf) > target):
                pending.appendleft(buf.pop())
                shrunk = True
            if shrunk:
                continue
            if carried:
                buf.pop(0)
                carried -= 1
                continue
            # One unit alone is over a limit (in practice the model's): cut it by that count,
            # leaving room for what goes with it (the context header, a table's header).
            extra = "\n".join(p for p in (context, ref.prefix if ref is not None else "") if p)
            if over_model:
                reserve = self._model_tokens(extra) - 1 if extra else 0  # both counts hold the specials
                limit = max(MIN_CHUNK_TOKENS, (self._model_max or 0) - reserve)
                pieces = self._split(buf[0], limit, self._model_tokens)
            else:
                reserve = self.count(ref.prefix) + 1 if ref is not None else 0
                pieces = self._split(buf[0], max(MIN_CHUNK_TOKENS, self.chunk_tokens - reserve), self.count)
            if len(pieces) == 1 and pieces[0].text == buf[0].text:
                return text, tokens, context  # a counter that no text satisfies; never loop on it
            buf[0] = pieces[0]
            pending.extendleft(reversed(pieces[1:]))

    def _model_tokens(self, text: str) -> int:
        assert self._model_count is not None
        return self._model_count(text)

    def _overlap(self, emitted: list[_Unit]) -> list[_Unit]:
        """The longest run of whole trailing units (never the whole chunk) within the overlap budget."""
        k = len(emitted)
        while (
            k > 1
            and emitted[k - 1].whole
            and emitted[k - 1].table is None
            and emitted[k - 1].tokens <= self.overlap_tokens
        ):
            if self.count(_join(emitted[k - 1 :])) > self.overlap_tokens:
                break
            k -= 1
        return emitted[k:]

    # --- units -----------------------------------------------------------------------

    def _units(self, pages: Iterable[Page], headings: deque[tuple[int, str, int]]) -> Iterator[_Unit]:
        """Sentences (and table rows) of every page in document offsets, each fitting ``chunk_tokens``."""
        base = 0
        gap = ""
        last_page = 0
        ended_sentence = True
        for index, page in enumerate(pages):
            if page.page_no <= last_page:
                raise DocumentError(
                    f"pages must come in increasing order, got {page.page_no} after {last_page}"
                )
            last_page = page.page_no
            if index:
                gap += PAGE_SEPARATOR
            text = page.text
            tables: tuple[Table, ...] = ()
            where: Callable[[int], int] = int
            if self.tables:
                read = read_tables(text)
                text, tables, where = read.text, read.tables, read.map_offset
            # offsets are clamped into the page; empty titles are not headings
            marks = sorted(
                (
                    (min(max(where(h.offset), 0), len(text)), h.text, h.level)
                    for h in page.headings
                    if h.text.strip()
                ),
                key=lambda mark: mark[0],
            )
            headings.extend((base + offset, title.strip(), level) for offset, title, level in marks)
            starts = [offset for offset, _, _ in marks]
            breaks = starts + [o + len(t) for o, t, _ in marks if t and text.startswith(t, o)]
            cursor = 0
            next_heading = 0
            first = True
            after_table = False
            for s, e, table, head in self._spans(text, breaks, tables):
                soft = (first and ended_sentence and index > 0) or head or (after_table and table is None)
                while next_heading < len(starts) and starts[next_heading] <= s:
                    next_heading += 1
                    soft = True
                piece = text[s:e]
                unit = _Unit(
                    base + s,
                    base + e,
                    piece,
                    gap + text[cursor:s],
                    page.page_no,
                    self.count(piece),
                    True,
                    soft,
                    table,
                    head,
                )
                yield from self._fitting(unit)
                ended_sentence = table is not None or _ENDS_SENTENCE.search(piece) is not None
                after_table = table is not None
                gap, cursor, first = "", e, False
            gap += text[cursor:]
            base += len(text) + len(PAGE_SEPARATOR)

    def _spans(
        self, text: str, breaks: list[int], tables: tuple[Table, ...]
    ) -> Iterator[tuple[int, int, _TableRef | None, bool]]:
        """``(start, end, table, is_table_head)`` of each sentence and table unit of a page."""
        if not tables:
            for s, e in sentence_spans(text, breaks):
                yield s, e, None, False
            return
        pos = 0
        for table in tables:
            for s, e in _sentences_between(text, pos, table.start, breaks):
                yield s, e, None, False
            prefix = self._table_prefix(table)
            ref = _TableRef(
                title=table.title,
                prefix=prefix,
                prefix_tokens=self.count(prefix),
                tokens=self.count(text[table.start : table.end]),
            )
            yield table.start, table.rows[0][1], ref, True  # title, header and first row: one unit
            for s, e in table.rows[1:]:
                yield s, e, ref, False
            pos = table.end
        for s, e in _sentences_between(text, pos, len(text), breaks):
            yield s, e, None, False

    def _fitting(self, unit: _Unit) -> Iterator[_Unit]:
        """``unit`` itself, or its lines, or token windows of them: each within ``chunk_tokens``."""
        if unit.tokens <= self.chunk_tokens:
            yield unit
            return
        lines = list(self._pieces(unit, [m.start() for m in _LINE_BREAK.finditer(unit.text)], whole=True))
        if len(lines) > 1:
            for line in lines:
                yield from self._fitting(line)
            return
        yield from self._split(unit, self.chunk_tokens, self.count)

    def _split(self, unit: _Unit, limit: int, count: Callable[[str], int]) -> list[_Unit]:
        """Cut ``unit`` at tiktoken token boundaries into pieces of at most ``limit`` by ``count``."""
        text = unit.text
        tokens = self._encoding.encode_ordinary(text)
        decoded, offsets = self._encoding.decode_with_offsets(tokens)
        # Token starts are the candidate cuts; if decoding did not round-trip, fall back to chars.
        grid = sorted({*offsets, len(text)}) if decoded == text else list(range(len(text) + 1))
        total = count(text)
        step = max(1, (len(grid) - 1) * limit // max(total, 1))
        cuts: list[int] = []
        i = 0
        while i < len(grid) - 1:
            j = min(i + step, len(grid) - 1)
            while True:
                s, e = _trim(text, grid[i], grid[j])
                n = count(text[s:e]) if s < e else 0
                if n <= limit:
                    break
                if j == i + 1:
                    if grid[j] - grid[i] == 1:
                        break  # one character over the limit: nothing smaller exists
                    # one token is over the limit by another tokenizer's count: cut it by characters
                    grid[j:j] = range(grid[i] + 1, grid[j])
                j = i + max(1, min(j - i - 1, (j - i) * limit // n))
            cuts.append(grid[j])
            i = j
        return list(self._pieces(unit, cuts[:-1], whole=False))

    def _pieces(self, unit: _Unit, cuts: list[int], *, whole: bool) -> Iterator[_Unit]:
        """Sub-units of ``unit`` between ``cuts`` (offsets within its text), trimmed of whitespace."""
        text = unit.text
        gap = unit.gap
        prev_end = 0
        for s, e in zip([0, *cuts], [*cuts, len(text)], strict=True):
            s, e = _trim(text, s, e)
            if s >= e:
                continue
            piece = text[s:e]
            first = prev_end == 0
            yield _Unit(
                unit.start + s,
                unit.start + e,
                piece,
                gap + text[prev_end:s],
                unit.page_no,
                self.count(piece),
                whole,
                unit.soft_break and first,
                unit.table,
                unit.table_head and first,
            )
            gap, prev_end = "", e


def _sentences_between(text: str, start: int, end: int, breaks: list[int]) -> Iterator[tuple[int, int]]:
    """``sentence_spans`` of ``text[start:end]``, in offsets of ``text``."""
    if start >= end:
        return
    inside = [b - start for b in breaks if start < b < end]
    for s, e in sentence_spans(text[start:end], inside):
        yield start + s, start + e


def _join(units: list[_Unit]) -> str:
    return units[0].text + "".join(u.gap + u.text for u in units[1:])


def _cost(unit: _Unit) -> int:
    """Estimated tokens a unit adds after another: a single space merges into the next token."""
    return unit.tokens + (unit.gap != " ")


def _estimate(units: list[_Unit]) -> int:
    if not units:
        return 0
    return units[0].tokens + sum(_cost(u) for u in units[1:])


def _prefix(units: list[_Unit]) -> _TableRef | None:
    """The table whose header a chunk starting with ``units`` repeats: it starts inside a table."""
    if units and units[0].table is not None and units[0].table.prefix and not units[0].table_head:
        return units[0].table
    return None


def _size(units: list[_Unit]) -> int:
    """Estimated tokens of a chunk of ``units``, a repeated table header included."""
    ref = _prefix(units)
    return _estimate(units) + (ref.prefix_tokens + 1 if ref is not None else 0)


def _size_with(units: list[_Unit], unit: _Unit) -> int:
    return _size(units) + _cost(unit) if units else _size([unit])


def _path_at(
    path: list[tuple[int, str]], headings: deque[tuple[int, str, int]], offset: int
) -> list[tuple[int, str]]:
    """The open headings (level, title) at ``offset``: ``path`` moved on by the headings before it."""
    for start, title, level in headings:
        if start > offset:
            break
        path = [*(p for p in path if p[0] < level), (level, title)]
    return path
