"""Tables in a page's text lines: found, and each row rewritten with its column headers.

Financial statements are where figures live, and a row such as
``Purchases of property, plant and equipment (PP&E) (1,577) (1,373) (1,420)`` means nothing
to a reader (or to retrieval) without the line ``(Millions) 2018 2017 2016`` far above it.
PDFium's text layer (and tesseract in page-segmentation mode 6) keeps each table row on one
line, so tables are read from those lines:

* a **header** is a line of column labels that are periods (``2018``, ``Fiscal 2022``,
  ``Q2 2023``, ``December 31, 2018``, ``Three Months Ended July 29, 2023``, ``2022 vs. 2021``,
  ``% change``), possibly after a stub such as ``(Millions)``; month-days over a line of
  years (``June 30, December 31,`` / ``2023 2022``) and groups over repeated columns
  (``Three Months Ended Six Months Ended`` / four dates) are combined;
* **rows** follow it: a label, then numeric cells (``1,577``, ``(1,577)``, ``$ 5,363``,
  ``23.4 %``, ``—``); a line of numbers alone takes the label lines just above it;
* the **title** is the short non-numeric lines just above the header
  (``Consolidated Statement of Cash Flows``), and the **units** are the ``(Millions)``,
  ``($ in millions)`` or ``(In thousands)`` found in the title, the header's stub or just
  under the header.

Each row whose cell count matches the header is rewritten as
``Label: 2018: (1,577); 2017: (1,373); 2016: (1,420) (Millions)`` (a span or month-day is said
once for the columns it heads: ``Three Months Ended December 31, 2022: 461; 2021: 229``);
every other line, inside or outside a table, keeps its text, and so does every row of a
table whose column labels repeat unresolved (``2023 2022 2023 2022`` under groups that are
not periods). The chunker (``ingest.chunking``) keeps a table's rows with their header. OCR'd
pages are read the same way; tesseract's usual misreadings of a dash (``_``, ``=``) and of a
dollar sign (``$s``, ``S$``) in a row of figures are taken for what they are.

Why not a table extractor: pdfplumber's ``page.find_tables()`` costs 0.6-1.1 s per page of a
10-K on this project's 2-core machine (about four times the cost of embedding the page's
text), and its text strategy splits words apart. Side by side on all 308 pages of three
FinanceBench 10-Ks (3M 2018, Best Buy 2023, Netflix 2017), ``find_tables()`` took 460 ms per
page (median; 3M's pages 692 ms, p95 1.3 s) and this reader 0.49 ms (p95 2.9 ms), about
900 times less; the document profile (``ingest.profile``) costs 0.1-0.3 ms per document.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

__all__ = ["Table", "TablePage", "join_broken_lines", "parse_row", "read_tables"]

# --- vocabulary -----------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_YEAR = r"(?:19|20)\d{2}"
_SPAN = (
    r"(?:(?:three|six|nine|twelve|thirteen|fourteen|twenty[- ]six|thirty[- ]nine|fifty[- ]two|fifty[- ]three|\d{1,2})"
    r"\s+(?:months?|weeks?)|(?:fiscal\s+)?(?:years?|quarters?|half[- ]years?|periods?))"
    r"\s+ended"
)
_DATE = rf"{_MONTH}\s+\d{{1,2}}\s*,?\s*{_YEAR}"
_MONTH_DAY = rf"{_MONTH}\s+\d{{1,2}}\s*,?"
_FISCAL = rf"(?:fiscal(?:\s+year)?|fy)\s*'?(?:{_YEAR}|\d{{2}})"
_QUARTER = rf"(?:q[1-4]|[1-4]q|(?:first|second|third|fourth)\s+quarter)\s*(?:fy\s*)?'?(?:{_YEAR}|\d{{2}})"
_YEAR_VS = rf"{_YEAR}\s+(?:vs\.?|versus|compared\s+(?:to|with))\s+{_YEAR}"
_SCALE_WORD = r"(?:millions?|thousands?|billions?)"
_PERIOD = (
    rf"(?:(?:{_SPAN}\s+)?(?:{_DATE}|{_MONTH_DAY}(?!\s*{_YEAR})|{_FISCAL}|{_QUARTER})"
    rf"|{_YEAR_VS}|(?<![\d,.$])(?:{_SPAN}\s+)?{_YEAR}(?![\d,.%]))"
    rf"(?:\s*\$\s*{_SCALE_WORD})?"
)
_CHANGE = (
    r"(?:\$|%)?\s*(?:change|chg\.?|variance|increase\s*/?\s*\(?decrease\)?)(?:\s*%)?"
    r"|[∆Δ]\s*%?|%\s*(?:of\s+(?:total|sales|revenue))"
)
_ATOM = re.compile(rf"(?P<period>{_PERIOD})|(?P<change>(?<!\w){_CHANGE}(?!\w))", re.IGNORECASE)
_FILLER = re.compile(r"[\s|:]*")
_HEADER_END = re.compile(
    rf"{_YEAR}|(?:fy|q[1-4]|[1-4]q)?'?\d{{1,2}},?|change|chg\.?|variance|decrease\)?|[∆Δ]%?|%|total|sales"
    rf"|revenues?|{_SCALE_WORD}",
    re.IGNORECASE,
)
"""What the last word of a header line can be (a cheap test before the full one)."""
_GROUP = re.compile(rf"(?:{_SPAN})(?:\s+{_MONTH_DAY}(?!\s*{_YEAR}))?", re.IGNORECASE)
_BARE_YEAR = re.compile(rf"^(?:{_SPAN}\s+)?{_YEAR}$", re.IGNORECASE)
_HAS_YEAR = re.compile(_YEAR)
_ONLY_MONTH_DAY = re.compile(rf"^{_MONTH_DAY}$", re.IGNORECASE)
_FULL_DATE = re.compile(rf"^(?P<md>{_MONTH_DAY})\s*(?P<y>{_YEAR})$", re.IGNORECASE)

_UNITS_IN_PARENS = re.compile(
    rf"\((?=[^()]*\b{_SCALE_WORD}\b)[^()]{{1,80}}\)|\((?:\$|dollars|usd|percent(?:age)?s?)[^()]{{0,30}}\)",
    re.IGNORECASE,
)
_UNITS_LINE = re.compile(
    rf"^\(?\s*(?:(?:\$|us\$|u\.s\.\s+dollars|dollars|amounts|figures)(?:\s+and\s+shares)?\s+)?in\s+{_SCALE_WORD}\b"
    rf"|^\(?\$\s*{_SCALE_WORD}\)?$",
    re.IGNORECASE,
)
_MAX_UNITS_LINE = 90

_NUMBER = re.compile(r"^\(?[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?\)?%?$")
_DASHES = frozenset({"—", "–", "-", "−", "—%", "-%", "–%", "n/a", "N/A", "NM", "nm", "n/m", "*"})
_CURRENCY = frozenset({"$", "€", "£", "¥", "US$"})
_OCR_DASHES = frozenset({"_", "__", "=", "==", "~", "--", "——"})  # how tesseract reads a table's dash
_OCR_CURRENCY = frozenset({"$s", "S$", "s$", "$S"})  # and a dollar sign
_FOOTNOTE = re.compile(r"^(?:\(\d{1,2}\)|\[\d{1,2}\]|\*{1,3})$")
_LETTER = re.compile(r"[^\W\d_]")
_SKIP_TITLE = re.compile(r"^(?:table of contents|index|page \d+( of \d+)?|\d{1,4})$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.;][\"'”’)]*\s*$")

_GROUP_LINE = re.compile(
    r"\band\s+(?:its\s+)?(?:consolidated\s+)?subsidiar(?:y|ies)(?:\s+companies)?\s*$", re.IGNORECASE
)
_MAX_TITLE_LINES = 3
_BROKEN_PARENTHETICAL = re.compile(r"\([^()\n\d]{0,60}(?:\n[^()\n\d]{0,60}){1,15}\)")
"""A parenthesis of words (no figures) broken over up to 16 short lines."""
_WORD_PER_LINE = re.compile(r"(?m)^[^\W\d][^\s\d]{0,24}(?:\n(?:[^\W\d][^\s\d]{0,24}|\d{1,2},))+(?=\n)")
"""Two or more lines of one word each (no figures, but a day such as ``31,`` after a word)."""
_MAX_GAP_LINES = 3  # non-row lines inside a table before it is over
_MAX_LABEL_LINES = 2  # label lines a line of bare numbers may take from above it
_MAX_TITLE_CHARS = 160
_MAX_STUB_WORDS = 12


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """One table found on a page, located in the rewritten page text.

    ``start``..``end`` covers the title, the header and the last row; ``head_end`` is where
    the header lines end. ``rows`` are the ``(start, end)`` spans of its lines after the
    header (rows, and the section labels between them), ``header`` the title and header
    lines as they read on the page (repeated at the top of every piece of a split table),
    ``column_header`` the header lines alone, ``title`` the title on one line without its
    ``X and Subsidiaries`` and units lines (may be empty), ``columns`` the column labels.
    """

    start: int
    head_end: int
    end: int
    title: str
    header: str
    column_header: str
    units: str | None
    columns: tuple[str, ...]
    rows: tuple[tuple[int, int], ...]
    serialised: int  # rows rewritten with their column labels


@dataclass(frozen=True, slots=True)
class TablePage:
    """A page's text with its table rows rewritten, and where its tables are.

    ``edits`` maps offsets of the original text to the new one: sorted
    ``(old_start, old_end, new_start, new_end)`` of every rewritten span.
    """

    text: str
    tables: tuple[Table, ...] = ()
    edits: tuple[tuple[int, int, int, int], ...] = field(default=(), repr=False)

    def map_offset(self, offset: int) -> int:
        """Where an offset of the original text lands in the rewritten one (a rewritten span's
        inside maps to its start)."""
        if not self.edits:
            return offset
        i = bisect_right([e[0] for e in self.edits], offset) - 1
        if i < 0:
            return offset
        _, old_end, new_start, new_end = self.edits[i]
        if offset < old_end:
            return new_start
        return offset - old_end + new_end


# --- lines ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    start: int
    end: int
    text: str  # stripped

    @property
    def blank(self) -> bool:
        return not self.text


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    pos = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        lead = len(raw) - len(raw.lstrip())
        out.append(_Line(pos + lead, pos + lead + len(stripped), stripped))
        pos += len(raw) + 1
    return out


@dataclass(slots=True)
class _Header:
    columns: list[str]
    stub: str
    first: int  # index of the first header line
    last: int  # index of the last header line


@dataclass(slots=True)
class _Row:
    label: str
    cells: list[str]


# --- cells ------------------------------------------------------------------------------


def _cell_token(token: str) -> str | None:
    """A numeric cell (or dash) as written, OCR's misreadings of a dash made a dash; else None."""
    if token in _DASHES:
        return token
    if token in _OCR_DASHES:
        return "—"
    body = token
    for symbol in ("US$", "$", "€", "£", "¥"):
        if body.startswith(symbol) or body.startswith("(" + symbol):
            body = body.replace(symbol, "", 1)
            break
    if any(ch.isdigit() for ch in body) and _NUMBER.match(body):
        return token
    return None


def parse_row(line: str) -> _Row | None:
    """``label, cells`` when ``line`` ends in at least one numeric cell, else None."""
    tokens = line.split()
    cells: list[str] = []
    i = len(tokens)
    while i > 0:
        token = tokens[i - 1]
        cell = _cell_token(token)
        if token == "%" and i > 1 and (before := _cell_token(tokens[i - 2])):
            cells.append(before + "%")
            i -= 2
        elif (token in _CURRENCY or token in _OCR_CURRENCY) and cells:
            cells[-1] = "$" + cells[-1] if token in _OCR_CURRENCY else token + cells[-1]
            i -= 1
        elif cell:
            cells.append(cell)
            i -= 1
        else:
            break
    if not cells:
        return None
    label = " ".join(tokens[:i]).rstrip(" :$")
    if label and not _LETTER.search(label):
        return None
    cells.reverse()
    return _Row(label, cells)


# --- headers ----------------------------------------------------------------------------


def _atoms(line: str) -> tuple[str, list[str]] | None:
    """``(stub, column labels)`` when ``line`` ends in at least two period/change labels."""
    words = line.rsplit(None, 1)
    if not words or not _HEADER_END.fullmatch(words[-1].rstrip("|:")):
        return None  # cheap test first: most lines cannot be headers
    matches = list(_ATOM.finditer(line))
    if not matches:
        return None
    # the columns are the longest run of atoms, separated by filler only, that ends the line
    run = [matches[-1]]
    if _FILLER.fullmatch(line[matches[-1].end() :]) is None:
        return None
    for prev in reversed(matches[:-1]):
        if _FILLER.fullmatch(line[prev.end() : run[0].start()]) is None:
            break
        run.insert(0, prev)
    periods = [m for m in run if m.group("period")]
    if len(run) < 2 or not periods:
        return None
    stub = line[: run[0].start()].strip()
    if len(stub.split()) > _MAX_STUB_WORDS or (stub and not _LETTER.search(stub)):
        return None
    if stub and stub[-1].isdigit() and not _UNITS_IN_PARENS.search(stub):
        return None  # "Notes due 2026 2027 2028": numbers, not a header
    return stub, [" ".join(m.group(0).split()) for m in run]


def _group_labels(line: str) -> list[str] | None:
    """``Three Months Ended Six Months Ended`` -> two group labels; None if the line is not that."""
    matches = list(_GROUP.finditer(line))
    if not matches:
        return None
    pos = 0
    for m in matches:
        if _FILLER.fullmatch(line[pos : m.start()]) is None:
            return None
        pos = m.end()
    if _FILLER.fullmatch(line[pos:]) is None:
        return None
    return [" ".join(m.group(0).split()) for m in matches]


def _header_at(lines: list[_Line], i: int) -> _Header | None:
    """The header whose column line is ``lines[i]`` (with a month-day or group line above)."""
    found = _atoms(lines[i].text)
    if found is None:
        return None
    stub, columns = found
    first = i
    prev = _previous(lines, i)
    month_days = sum(1 for c in columns if _ONLY_MONTH_DAY.match(c))
    if month_days:
        return None  # month-days wait for the line of years under them; mixed is a garbled layout
    if prev is not None and all(re.fullmatch(_YEAR, c) for c in columns):
        above = _atoms(lines[prev].text)
        if (
            above is not None
            and len(above[1]) == len(columns)
            and all(_ONLY_MONTH_DAY.match(c) for c in above[1])
        ):
            columns = [f"{md} {y}" for md, y in zip(above[1], columns, strict=True)]
            stub, first = " ".join(p for p in (above[0], stub) if p), prev
            prev = _previous(lines, prev)
    stub, columns = _normalise_columns(stub, columns)
    if len(set(columns)) < len(columns) and prev is not None:
        groups = _group_labels(lines[prev].text)
        if groups and len(columns) % len(groups) == 0:
            size = len(columns) // len(groups)
            columns = [f"{groups[k // size]} {c}" for k, c in enumerate(columns)]
            first = prev
    return _Header(columns, stub, first, i)


_LEADING = re.compile(rf"^(?P<span>{_SPAN}\s+)?(?P<md>{_MONTH_DAY}\s*)?(?P<y>{_YEAR})$", re.IGNORECASE)
_YEARLY_SPAN = re.compile(r"^(?:fiscal\s+)?years?\s+ended", re.IGNORECASE)


def _normalise_columns(stub: str, columns: list[str]) -> tuple[str, list[str]]:
    """Spread a leading column's period over the bare years after it.

    ``Years ended December 31, 2022 | 2021 | 2020`` -> stub ``Years ended December 31,`` and
    the years; ``June 30, 2023 | 2022`` -> ``June 30, 2023 | June 30, 2022``;
    ``Three Months Ended December 31, 2022 | 2021`` -> both with the span and the date.
    """
    first = _LEADING.match(columns[0])
    rest = columns[1:]
    if first is None or not (first.group("span") or first.group("md")):
        return stub, columns
    span = " ".join((first.group("span") or "").split())
    if span and rest and all(_FULL_DATE.match(c) for c in rest):
        # "Fiscal Years Ended January 28, 2023 | January 29, 2022": the span heads every date
        dates = [columns[0][first.end("span") :].strip(), *rest]
        if _YEARLY_SPAN.match(span):
            return " ".join(p for p in (stub, span) if p), dates
        return stub, [f"{span} {d}" for d in dates]
    if not rest or not all(re.fullmatch(_YEAR, c) for c in rest):
        return stub, columns
    month_day = " ".join((first.group("md") or "").split()).rstrip(",")
    years = [first.group("y"), *rest]
    if span and _YEARLY_SPAN.match(span):
        lead = " ".join(p for p in (span, month_day + "," if month_day else "") if p)
        return " ".join(p for p in (stub, lead) if p), years
    prefix = " ".join(p for p in (span, month_day + "," if month_day else "") if p)
    return stub, [f"{prefix} {y}" for y in years]


def _previous(lines: list[_Line], i: int) -> int | None:
    j = i - 1
    while j >= 0 and lines[j].blank:
        j -= 1
    return j if j >= 0 and i - j <= 2 else None


# --- titles and units --------------------------------------------------------------------


def _is_prose(text: str) -> bool:
    """A line of running text: too long for a label, or the end of a sentence."""
    if len(text) > _MAX_TITLE_CHARS:
        return True
    return len(text.split()) >= 5 and _SENTENCE_END.search(text) is not None


def _title_lines(lines: list[_Line], first: int, floor: int) -> list[int]:
    """Indexes of the title lines above line ``first`` (not above ``floor``)."""
    out: list[int] = []
    j = first - 1
    while j >= floor and len(out) < _MAX_TITLE_LINES:
        line = lines[j]
        if line.blank or _is_prose(line.text) or line.text[:1].islower():
            break  # a lower-case start is the tail of a wrapped sentence
        row = parse_row(line.text)
        if row is not None and len(row.cells) >= 2:
            break
        if _SKIP_TITLE.match(line.text):
            break
        out.insert(0, j)
        j -= 1
    return out


def _title_text(titles: list[str]) -> str:
    """The title on one line, without the lines that say little (``X and Subsidiaries``, units)."""
    telling = [t for t in titles if not (_GROUP_LINE.search(t) or _is_units_line(t))]
    return " ".join(telling or titles)


def _units(texts: list[str]) -> str | None:
    for text in texts:
        m = _UNITS_IN_PARENS.search(text)
        if m and re.search(_SCALE_WORD, m.group(0), re.IGNORECASE):
            return _short_units(m.group(0))
        if len(text) <= _MAX_UNITS_LINE and _UNITS_LINE.match(text.strip()):
            return _short_units(text.strip())
    for text in texts:
        m = _UNITS_IN_PARENS.search(text)
        if m:
            return _short_units(m.group(0))
    return None


def _short_units(units: str) -> str:
    """Units as written when short; else just their scale: ``(in millions)``."""
    inner = units.strip().strip("()").strip()
    if len(inner.split()) <= 4 and "," not in inner:
        return f"({inner})"
    scale = re.search(_SCALE_WORD, inner, re.IGNORECASE)
    return f"(in {scale.group(0).lower()})" if scale else f"({' '.join(inner.split()[:4])})"


# --- rewriting ---------------------------------------------------------------------------


_ENDED = re.compile(r"^(?P<span>.*?\bended)\s+(?P<rest>\S.*)$", re.IGNORECASE)


def _cell_labels(columns: list[str]) -> list[str]:
    """Column labels as a row repeats them, saying a span and a month-day once for the columns
    they head: ``Three Months Ended July 29, 2023: ..; July 30, 2022: ..`` and
    ``Six Months Ended December 31, 2022: ..; 2021: ..``."""
    labels: list[str] = []
    previous: tuple[str | None, str | None] = (None, None)
    for column in columns:
        m = _ENDED.match(column)
        span = m.group("span").lower() if m else None
        rest = m.group("rest") if m else column
        date = _FULL_DATE.match(rest)
        month_day = date.group("md").rstrip(", ").lower() if date else None
        if span is not None and span == previous[0]:
            label = date.group("y") if date and month_day == previous[1] else rest
        else:
            label = column
        labels.append(label)
        previous = (span, month_day)
    return labels


def _serialise(row: _Row, columns: list[str], units: str | None) -> str:
    pairs = "; ".join(f"{c}: {v}" for c, v in zip(columns, row.cells, strict=True))
    numeric = [v for v in row.cells if v not in _DASHES]
    suffix = ""
    if units and not (numeric and all(v.endswith("%") for v in numeric)):
        suffix = " " + units
    return f"{row.label}: {pairs}{suffix}" if row.label else f"{pairs}{suffix}"


def _fit_cells(row: _Row, n: int) -> _Row | None:
    """The row with exactly ``n`` cells, moving a footnote mark or a stray year into its label."""
    if len(row.cells) == n:
        return row
    extra = len(row.cells) - n
    if extra == 1 and n >= 2:
        lead = row.cells[0]
        if _FOOTNOTE.match(lead) or re.fullmatch(r"\d{1,4}", lead):
            return _Row(f"{row.label} {lead}".strip(), row.cells[1:])
    return None


@dataclass(slots=True)
class _Found:
    header: _Header
    title: list[int]
    units: str | None
    # per row: (first line of its group, first line of the row, last line, new text or None);
    # a group is the row with the section labels just above it
    rows: list[tuple[int, int, int, str | None]]
    matched: int


def _scan(lines: list[_Line]) -> list[_Found]:
    found: list[_Found] = []
    floor = 0
    i = 0
    while i < len(lines):
        header = None if lines[i].blank else _header_at(lines, i)
        if header is None or header.first < floor:
            i += 1
            continue
        table = _body(lines, header, floor)
        if table is None:
            i += 1
            continue
        found.append(table)
        floor = table.rows[-1][2] + 1
        i = floor
    return found


def _is_units_line(text: str) -> bool:
    if len(text) > _MAX_UNITS_LINE:
        return False
    return _UNITS_LINE.match(text) is not None or _UNITS_IN_PARENS.fullmatch(text) is not None


def _label_lines(lines: list[_Line], pending: list[int], at: int) -> list[int]:
    """The pending lines directly above line ``at`` that label its bare numbers."""
    taken: list[int] = []
    k = at - 1
    while k >= 0 and lines[k].blank:
        k -= 1
    for index in reversed(pending):
        if index != k or len(taken) >= _MAX_LABEL_LINES:
            break
        text = lines[index].text
        if _is_prose(text) or _is_units_line(text):
            break
        taken.insert(0, index)
        k -= 1
        while k >= 0 and lines[k].blank:
            k -= 1
    return taken


def _body(lines: list[_Line], header: _Header, floor: int) -> _Found | None:
    n = len(header.columns)
    ambiguous = len(set(header.columns)) < n
    cell_labels = _cell_labels(header.columns)
    title = _title_lines(lines, header.first, floor)
    rows: list[tuple[int, int, int, str | None]] = []
    pending: list[int] = []  # non-row lines since the last row
    units_texts = [lines[t].text for t in title] + [header.stub]
    units_texts += [lines[k].text for k in range(header.first, header.last)]
    units: str | None = None
    units_known = False
    matched = 0
    j = header.last + 1
    while j < len(lines):
        line = lines[j]
        if line.blank:
            j += 1
            if pending or not rows:
                break
            continue
        if _header_at(lines, j) is not None:
            break
        if not rows and _is_units_line(line.text):
            units_texts.append(line.text)
            pending.append(j)
            j += 1
            continue
        row = parse_row(line.text)
        if row is not None and len(row.cells) >= 2:
            if not units_known:
                units, units_known = _units(units_texts), True
            first = j
            if not row.label:
                labels = _label_lines(lines, pending, j)
                if labels:
                    first = labels[0]
                    row = _Row(" ".join(lines[k].text for k in labels).rstrip(" :$"), row.cells)
            fitted = _fit_cells(row, n)
            new_text = None
            if fitted is not None:
                matched += 1
                if not ambiguous:
                    new_text = _serialise(fitted, cell_labels, units)
            group = pending[0] if pending and pending[0] < first else first
            rows.append((group, first, j, new_text))
            pending = []
            j += 1
            continue
        if _is_prose(line.text) or len(pending) >= _MAX_GAP_LINES:
            break
        pending.append(j)
        j += 1
    if matched < 2:
        return None
    return _Found(header, title, units, rows, matched)


def join_broken_lines(text: str) -> str:
    """Words PDFium put one per line, on one line again; the same length, so offsets hold.

    Some filings' text layers break titles, units and labels into a word per line
    (``MGM\nRESORTS\n...\nCONSOLIDATED\nBALANCE\nSHEETS``, ``(Dollars\nin\nmillions)``,
    ``December\n31,``). The table's title, the statement's name, was then lost (and with it
    the chunk's context header), and a label's words were taken for separate lines.
    """
    text = _BROKEN_PARENTHETICAL.sub(lambda m: m.group(0).replace("\n", " "), text)
    return _WORD_PER_LINE.sub(lambda m: m.group(0).replace("\n", " "), text)


def read_tables(text: str) -> TablePage:
    """Find the tables of one page's text and rewrite their rows; other text is unchanged (on a
    page with tables, words broken one per line are joined first: :func:`join_broken_lines`)."""
    if not text or not _HAS_YEAR.search(text):
        return TablePage(text)
    original = text
    text = join_broken_lines(text)
    lines = _lines(text)
    found = _scan(lines)
    if not found:
        return TablePage(original)
    pieces: list[str] = []
    edits: list[tuple[int, int, int, int]] = []
    tables: list[Table] = []
    old_pos = 0
    new_len = 0

    def copy_to(old: int) -> None:
        nonlocal old_pos, new_len
        pieces.append(text[old_pos:old])
        new_len += old - old_pos
        old_pos = old

    for table in found:
        header = table.header
        head_first = table.title[0] if table.title else header.first
        copy_to(lines[head_first].start)
        start = new_len
        copy_to(lines[header.last].end)
        head_end = new_len
        spans: list[tuple[int, int]] = []
        for group, first, last, new_text in table.rows:
            copy_to(lines[group].start)
            group_start = new_len
            if new_text is None:
                copy_to(lines[last].end)
            else:
                copy_to(lines[first].start)
                old_start, old_end = lines[first].start, lines[last].end
                pieces.append(new_text)
                edits.append((old_start, old_end, new_len, new_len + len(new_text)))
                new_len += len(new_text)
                old_pos = old_end
            spans.append((group_start, new_len))
        head_lines = [*table.title, *range(header.first, header.last + 1)]
        tables.append(
            Table(
                start=start,
                head_end=head_end,
                end=new_len,
                title=_title_text([lines[t].text for t in table.title]),
                header="\n".join(lines[k].text for k in head_lines if not lines[k].blank),
                column_header="\n".join(
                    lines[k].text for k in range(header.first, header.last + 1) if not lines[k].blank
                ),
                units=table.units,
                columns=tuple(header.columns),
                rows=tuple(spans),
                serialised=sum(1 for r in table.rows if r[3] is not None),
            )
        )
    copy_to(len(text))
    return TablePage("".join(pieces), tuple(tables), tuple(edits))
