"""What a document is, from its first pages: title, filer, form and period.

A chunk of a 10-K reads ``Purchases of property, plant and equipment (PP&E) (1,577) ...``
with nothing saying whose filing, which year, or which page it is; with 31 filings in one
collection, that is what retrieval gets wrong. At ingestion the first pages (and the PDF's
metadata title) are read once into a :class:`DocumentProfile`:

* **title**: the metadata title when it means something (not an EDGAR accession number such
  as ``0000764478-17-000008``, not ``Document`` or ``Microsoft Word - ...``), else the first
  heading, else the first line that is not cover-page boilerplate;
* **filer**, for SEC filings: the registrant's name, the line above ``(Exact name of
  registrant ...)`` or the line after the commission file number; for an earnings release,
  the company that ``reports`` in its headline;
* **form**: ``10-K``, ``10-Q``, ``8-K``, ... from the cover's ``FORM`` line (or the metadata
  title), or ``earnings release`` (``Exhibit 99.1``);
* **period**: ``fiscal year ended December 31, 2018`` (fiscal year 2018), ``quarterly period
  ended July 29, 2023``, ``dated May 20, 2022`` for an 8-K, ``fiscal 2023`` or ``fourth
  quarter and full year 2022`` for a release.

Everything is optional: a document that is not a filing gets a title only. The profile is
stored on the document's metadata (``profile_*`` keys, :meth:`DocumentProfile.to_metadata`)
and :meth:`DocumentProfile.describe` heads every chunk's context (``ingest.chunking``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from rag.types import Page

__all__ = ["DocumentProfile", "profile_document", "read_profile"]

PROFILE_PAGES = 2
"""Pages read before chunking starts: the cover page and the one after it."""

_COVER_CHARS = 6000  # of the first pages, where the cover's fields are looked for
_MAX_NAME_CHARS = 80
_MAX_TITLE_WORDS = 16

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DATE = rf"(?P<month>{_MONTH})\s+(?P<day>\d{{1,2}})\s*,?\s*(?P<year>(?:19|20)\d{{2}})"

_SEC_HEADER = re.compile(r"securities\s+and\s+exchange\s+commission", re.IGNORECASE)
_FORM = re.compile(
    r"\bform\s+(?P<form>10-K(?:/A|T)?|10-Q(?:/A)?|8-K(?:/A)?|20-F(?:/A)?|40-F|6-K|11-K|S-1|S-4|F-1|DEF\s*14A)(?![\w-])",
    re.IGNORECASE,
)
_FORM_IN_TITLE = re.compile(
    r"^(?:form\s+)?(?P<form>10-K(?:/A)?|10-Q(?:/A)?|8-K(?:/A)?|20-F|40-F|6-K)\b", re.IGNORECASE
)
_SEC_PERIOD = re.compile(
    rf"for\s+the\s+(?P<kind>fiscal\s+year|quarterly\s+period|year|quarter|transition\s+period)\s+ended:?\s+{_DATE}",
    re.IGNORECASE,
)
_REPORT_DATE = re.compile(
    rf"date\s+of\s+(?:report|earliest\s+event\s+reported)[^:]{{0,60}}:\s*{_DATE}", re.IGNORECASE
)
_EXACT_NAME = re.compile(r"^\(?\s*exact\s+name\s+of\s+(?:the\s+)?registrant", re.IGNORECASE)
_FILE_NUMBER = re.compile(r"commission\s+file\s+(?:number|no\.?)\s*:?\s*[\d-]+\s*$", re.IGNORECASE)
_NOT_A_NAME = re.compile(
    r"commission\s+file|transition\s+period|exchange\s+act|mark\s+one|^form\s|state\s+of\s+incorporation"
    r"|^\(|identification|washington|^or$|address|telephone|pursuant|securities",
    re.IGNORECASE,
)
_GROUP_NAME = re.compile(r"^(?P<name>[A-Z][A-Z0-9&.,' -]{2,60}?),?\s+AND\s+(?:ITS\s+)?SUBSIDIARIES$")
_LETTER_SPACED = re.compile(r"\b([A-Z]) (?=[A-Z]{2,})")
_MAX_NAME_LINES = 6
_RULES = re.compile(r"^[\s_\-–—=.]+|[\s_\-–—=]+$")
_EXHIBIT = re.compile(r"\bexhibit\s+99\.?\d*", re.IGNORECASE)
_RELEASE = re.compile(
    r"^(?P<name>.{2,80}?)\s+(?:reports?|announces?|posts?|delivers?)\b(?P<rest>.{0,160})", re.IGNORECASE
)
_MAX_HEADLINE_CHARS = 200
_PROPER_NAME = re.compile(r"^(?:[A-Z0-9][\w.&'’-]*,?)(?:\s+(?:[A-Z0-9&][\w.&'’-]*,?|of|and|de|the))*$")
"""A company as a headline names it: capitalised words (``Amcor``, ``MGM Resorts International``)."""
_RESULTS = re.compile(r"\bresults\b|\bearnings\b", re.IGNORECASE)
_TICKER = re.compile(
    r"(?P<name>[A-Z][\w.,&' -]{2,60}?)\s*\((?:NYSE|NASDAQ|Nasdaq|ASX|LSE|TSX)\s*:", re.UNICODE
)
_QUARTER_PERIOD = re.compile(
    r"\b(?P<q>first|second|third|fourth)\s+quarter(?P<fy>\s+and\s+full[- ]year)?\s+(?:of\s+)?(?:fiscal\s+)?(?P<year>(?:19|20)\d{2})",
    re.IGNORECASE,
)
_FISCAL_PERIOD = re.compile(
    r"\bfiscal\s+(?:year\s+)?(?P<year>(?:19|20)\d{2})\s+(?:results|earnings)", re.IGNORECASE
)
_FULL_YEAR_PERIOD = re.compile(r"\bfull[- ]year\s+(?P<year>(?:19|20)\d{2})\b", re.IGNORECASE)
_ENDED_PERIOD = re.compile(
    rf"\bfor\s+the\s+(?P<kind>(?:fourth\s+|third\s+|second\s+|first\s+)?quarter(?:\s+and\s+(?:fiscal\s+)?year)?|(?:fiscal\s+)?year|three\s+months|six\s+months|nine\s+months|twelve\s+months)\s+ended\s+{_DATE}",
    re.IGNORECASE,
)
_ACCESSION = re.compile(r"^\d{10}-\d{2}-\d{6}$")
_MEANINGLESS_TITLES = frozenset(
    {
        "document",
        "untitled",
        "title",
        "none",
        "null",
        "pdf",
        "presentation",
        "powerpoint presentation",
        "slide 1",
    }
)
_SOFTWARE_TITLE = re.compile(
    r"^(?:microsoft\s+(?:word|powerpoint|excel)\s*-|untitled)|\.(?:docx?|pdf|indd|tmp|rtf|xlsx?)$",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(
    r"^(?:table\s+of\s+contents|united\s+states|securities\s+and\s+exchange\s+commission|washington,?\s+d\.?\s*c\.?.*"
    r"|page\s+\d+(?:\s+of\s+\d+)?|exhibit\s+[\d.]+|\(mark\s+one\)|index|contents)$",
    re.IGNORECASE,
)
_ANNUAL_FORMS = frozenset({"10-K", "10-K/A", "10-KT", "20-F", "20-F/A", "40-F"})


@dataclass(frozen=True, slots=True)
class DocumentProfile:
    """What a document is; every field may be missing.

    ``period`` reads as written in a sentence (``fiscal year ended December 31, 2018``),
    ``period_end`` is its ISO date when there is one, ``fiscal_year`` the year an annual
    report or a release covers.
    """

    title: str | None = None
    filer: str | None = None
    form: str | None = None
    period: str | None = None
    period_end: str | None = None
    fiscal_year: int | None = None

    def describe(self) -> str:
        """One line naming the document: ``3M COMPANY 10-K fiscal year ended December 31, 2018 (FY2018)``.

        A filing is named by filer, form and period; any other document by its title.
        """
        if not (self.filer or self.form):
            return self.title or ""
        name = self.filer or ""
        if not name and self.title and (not self.form or self.form.lower() not in self.title.lower()):
            name = self.title
        parts = [name, self.form or "", self.period or ""]
        period = (self.period or "").lower()
        if self.fiscal_year and not re.search(rf"(?:fiscal|year) {self.fiscal_year}", period):
            parts.append(f"(FY{self.fiscal_year})")
        return " ".join(p for p in parts if p)

    def to_metadata(self) -> dict[str, Any]:
        """The fields that are known, as ``profile_<field>`` metadata keys (filterable)."""
        return {f"profile_{f.name}": getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> DocumentProfile:
        """The profile :meth:`to_metadata` stored; an empty one for a document without."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = metadata.get(f"profile_{f.name}")
            if value is None or value == "":
                continue
            if f.name == "fiscal_year":
                try:
                    values[f.name] = int(value)
                except (TypeError, ValueError):
                    continue
            else:
                values[f.name] = str(value)
        return cls(**values)


# --- reading ------------------------------------------------------------------------------


def read_profile(
    pages: Iterable[Page], *, title: str | None = None, look: int = PROFILE_PAGES
) -> tuple[DocumentProfile, Iterator[Page]]:
    """Read the first ``look`` pages of a lazy page stream into a profile; the returned
    iterator yields every page, those included, so the stream is consumed only once."""
    stream = iter(pages)
    first = list(itertools.islice(stream, look))
    return profile_document(first, title=title), itertools.chain(first, stream)


def profile_document(pages: Sequence[Page], *, title: str | None = None) -> DocumentProfile:
    """The profile of a document from its first pages and its metadata title."""
    text = "\n".join(p.text for p in pages)[:_COVER_CHARS]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    flat = " ".join(text.split())
    meta_title = _meaningful_title(title)
    if _SEC_HEADER.search(flat[:1500]):
        profile = _sec_cover(lines, flat)
        if profile is not None:
            return _with_title(profile, meta_title, pages, lines)
    release = _release(lines, flat, meta_title)
    if release is not None:
        return _with_title(release, meta_title, pages, lines)
    form = _form_from_title(meta_title)
    return DocumentProfile(title=meta_title or _first_title(pages, lines), form=form)


def _with_title(
    profile: DocumentProfile, meta_title: str | None, pages: Sequence[Page], lines: list[str]
) -> DocumentProfile:
    if meta_title:
        chosen: str | None = meta_title
    elif profile.filer and profile.form:
        chosen = f"{profile.filer} {profile.form}"
    else:
        chosen = _first_title(pages, lines)
    return DocumentProfile(
        title=chosen,
        filer=profile.filer,
        form=profile.form,
        period=profile.period,
        period_end=profile.period_end,
        fiscal_year=profile.fiscal_year,
    )


# --- SEC cover pages ------------------------------------------------------------------------


def _sec_cover(lines: list[str], flat: str) -> DocumentProfile | None:
    found = _FORM.search(flat[:2500])
    if found is None:
        return None
    form = re.sub(r"\s+", " ", found.group("form").upper())
    period = period_end = None
    fiscal_year = None
    ended = _SEC_PERIOD.search(flat)
    if ended is not None:
        when = _date(ended)
        kind = " ".join(ended.group("kind").lower().split())
        if kind == "year":
            kind = "fiscal year"
        elif kind == "quarter":
            kind = "quarterly period"
        if when is not None:
            period, period_end = f"{kind} ended {_format(when)}", when.isoformat()
            if form in _ANNUAL_FORMS:
                fiscal_year = when.year
    else:
        reported = _REPORT_DATE.search(flat)
        when = _date(reported) if reported is not None else None
        if when is not None:
            period, period_end = f"dated {_format(when)}", when.isoformat()
    return DocumentProfile(
        filer=_registrant(lines), form=form, period=period, period_end=period_end, fiscal_year=fiscal_year
    )


def _registrant(lines: list[str]) -> str | None:
    """The registrant's name: just above ``(Exact name of registrant ...)``, or just after the
    commission file number, or the group's name heading a page (``X AND SUBSIDIARIES``)."""
    for i, line in enumerate(lines):
        if _EXACT_NAME.search(line):
            name = _name_above(lines, i)
            if name:
                return name
    for i, line in enumerate(lines[:-1]):
        if _FILE_NUMBER.search(line):
            name = _name(lines[i + 1])
            if name:
                return name
    for line in lines:
        group = _GROUP_NAME.match(line)
        if group:
            return group.group("name")
    return None


def _name_above(lines: list[str], at: int) -> str | None:
    """The name on the line(s) above ``lines[at]``; a name set letter-spaced over several short
    lines (``MGM`` / ``R`` / ``ESORTS I`` / ``NTERNATIONAL``) is put back together."""
    parts: list[str] = []
    k = at - 1
    while k >= 0 and len(parts) < _MAX_NAME_LINES:
        name = _name(lines[k], min_letters=1)
        if name is None:
            break
        parts.insert(0, name)
        if len(name.split()) > 3:
            break
        k -= 1
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0] if sum(ch.isalpha() for ch in parts[0]) >= 2 else None
    if len(parts) > 2 or any(len(p.split()) == 1 and len(p) == 1 for p in parts):
        joined = _LETTER_SPACED.sub(r"\1", " ".join(parts))
    else:
        joined = parts[-1]  # two ordinary lines: the one just above is the name
    return joined if len(joined) <= _MAX_NAME_CHARS else None


def _name(line: str, min_letters: int = 2) -> str | None:
    name = _RULES.sub("", line).strip()
    if not name or len(name) > _MAX_NAME_CHARS or _NOT_A_NAME.search(name):
        return None
    if sum(ch.isalpha() for ch in name) < min_letters or re.search(r"\d{3,}", name):
        return None
    return name


# --- earnings releases ------------------------------------------------------------------------


def _release(lines: list[str], flat: str, meta_title: str | None) -> DocumentProfile | None:
    """An earnings release: a headline where a company reports results (or an Exhibit 99.1)."""
    head = [line for line in lines[:8] if not _BOILERPLATE.match(line)]
    exhibit = _EXHIBIT.search(" ".join(lines[:4])) or (meta_title and _EXHIBIT.search(meta_title))
    filer = None
    headline = ""
    for line in head[:3]:
        m = _RELEASE.match(line) if len(line) <= _MAX_HEADLINE_CHARS else None
        if m and _RESULTS.search(m.group("rest")) and _PROPER_NAME.match(m.group("name")):
            filer, headline = m.group("name").strip(" ,:–-"), line
            break
    if filer is None and not exhibit:
        return None
    if filer is None:
        ticker = _TICKER.search(flat[:3000])
        filer = ticker.group("name").strip() if ticker else None
    if filer is None and not _RESULTS.search(" ".join(head[:3])):
        return None
    form = "earnings release (Exhibit 99.1)" if exhibit else "earnings release"
    period, period_end, fiscal_year = _release_period(headline or " ".join(head[:3]), flat[:3000], meta_title)
    return DocumentProfile(
        filer=filer, form=form, period=period, period_end=period_end, fiscal_year=fiscal_year
    )


def _release_period(
    headline: str, flat: str, meta_title: str | None
) -> tuple[str | None, str | None, int | None]:
    for text in (headline, meta_title or ""):
        quarter = _QUARTER_PERIOD.search(text)
        if quarter:
            year = int(quarter.group("year"))
            label = f"{quarter.group('q').lower()} quarter{' and full year' if quarter.group('fy') else ''} {year}"
            return label, None, year if quarter.group("fy") else None
        fiscal = _FISCAL_PERIOD.search(text)
        if fiscal:
            year = int(fiscal.group("year"))
            return f"fiscal {year}", None, year
        full = _FULL_YEAR_PERIOD.search(text)
        if full:
            year = int(full.group("year"))
            return f"full year {year}", None, year
    ended = _ENDED_PERIOD.search(flat)
    if ended:
        when = _date(ended)
        if when is not None:
            return (
                f"{' '.join(ended.group('kind').lower().split())} ended {_format(when)}",
                when.isoformat(),
                None,
            )
    return None, None, None


# --- titles --------------------------------------------------------------------------------


def _meaningful_title(title: str | None) -> str | None:
    """The metadata title, unless it is an accession number, a placeholder or a file name."""
    if not title:
        return None
    title = " ".join(str(title).split())
    lowered = title.lower()
    if (
        len(title) < 3
        or sum(ch.isalpha() for ch in title) < 2
        or _ACCESSION.match(title)
        or lowered in _MEANINGLESS_TITLES
        or _SOFTWARE_TITLE.search(title)
    ):
        return None
    return title


def _form_from_title(title: str | None) -> str | None:
    if not title:
        return None
    m = _FORM_IN_TITLE.match(title)
    return m.group("form").upper() if m else None


def _first_title(pages: Sequence[Page], lines: list[str]) -> str | None:
    """The first heading, else the first line that is not boilerplate, clipped to a title's length."""
    for page in pages:
        for heading in sorted(page.headings, key=lambda h: h.offset):
            if heading.text.strip():
                return _clip_words(heading.text)
    for line in lines[:20]:
        if _BOILERPLATE.match(line) or len(line.split()) < 2 or sum(ch.isalpha() for ch in line) < 3:
            continue
        return _clip_words(line)
    return None


def _clip_words(text: str) -> str:
    words = text.split()
    clipped = " ".join(words[:_MAX_TITLE_WORDS])
    return clipped + " ..." if len(words) > _MAX_TITLE_WORDS else clipped


# --- dates ------------------------------------------------------------------------------------


def _date(match: re.Match[str]) -> date | None:
    month = _MONTHS.get(match.group("month").lower().rstrip("."))
    if month is None:
        return None
    try:
        return date(int(match.group("year")), month, int(match.group("day")))
    except ValueError:
        return None


def _format(when: date) -> str:
    return f"{when.strftime('%B')} {when.day}, {when.year}"
