"""Decide what a file is from its bytes, never its name: uploads lie about their extension.

Also home of :func:`decode_text`, because telling text from binary *is* decoding it.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from pathlib import Path

import charset_normalizer

from rag.errors import CorruptDocument, EmptyDocument, UnsupportedType

SNIFF_BYTES = 64 * 1024
"""How much of a file the sniffer reads; enough for charset detection and markup cues."""

_MAX_BAD_CHAR_RATIO = 0.05
"""Real text has almost no control/unassigned characters; binary decoded as text has many."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_REJECTED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Office file (.doc/.xls); save it as .docx"),
    (b"\x7fELF", "executable"),
    (b"\x1f\x8b", "gzip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"BM", "BMP image"),
)

_PDF_HEADER = re.compile(rb"%PDF-[12]\.\d")
_OOXML_FIRST_ENTRIES = (b"[Content_Types].xml", b"_rels/", b"word/", b"docProps/")
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1b")


def sniff(path: Path) -> str:
    """Return ``pdf``, ``png``, ``jpeg``, ``tiff``, ``docx``, ``html``, ``markdown`` or ``text``.

    Raises ``EmptyDocument`` for a 0-byte file, ``UnsupportedType`` for anything else.
    """
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
        truncated = bool(fh.read(1))
    if not head:
        raise EmptyDocument("The file is empty (0 bytes)")
    binary_kind = _sniff_binary(head, path)
    if binary_kind is not None:
        return binary_kind
    text = _decode_sample(head, truncated)
    if _looks_like_html(text):
        return "html"
    if _looks_like_markdown(text):
        return "markdown"
    return "text"


def _sniff_binary(head: bytes, path: Path) -> str | None:
    if _PDF_HEADER.search(head, 0, 1024):  # readers accept junk before the header; so do we
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(head, path)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise UnsupportedType("WebP images are not supported; use PNG, JPEG or TIFF")
    for signature, name in _REJECTED_SIGNATURES:
        # BMP's two-byte signature is too short to trust on its own.
        if head.startswith(signature) and (name != "BMP image" or b"\x00" in head[:64]):
            raise UnsupportedType(f"Unsupported document type: {name}")
    return None


def _sniff_zip(head: bytes, path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        name_len = int.from_bytes(head[26:28], "little")
        first_entry = head[30 : 30 + name_len]
        if first_entry.startswith(_OOXML_FIRST_ENTRIES):
            raise CorruptDocument("The Office document is truncated or corrupt") from exc
        raise UnsupportedType("A damaged ZIP archive is not a supported document") from exc
    if "word/document.xml" in names:
        return "docx"
    raise UnsupportedType("ZIP archives other than Word .docx documents are not supported")


def _decode_sample(head: bytes, truncated: bool) -> str:
    """Decode the sniffed prefix, tolerating a multi-byte character cut at its end."""
    if truncated and not head.startswith(tuple(bom for bom, _ in _BOMS)):
        try:
            return _require_text(codecs.getincrementaldecoder("utf-8")().decode(head, final=False))
        except UnicodeDecodeError:
            pass
    return decode_text(head)


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding to text; ``UnsupportedType`` if they are not text.

    BOMs win, then strict UTF-8 (the common case, and cheap), then charset-normalizer.
    """
    text: str | None = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            break
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode(_detect_encoding(data), errors="replace")
    return _require_text(text).lstrip("\ufeff")


_TIE_CHAOS = 0.001
_TIE_COHERENCE = 0.01
_WESTERN_DEFAULT = "cp1252"
"""Among equally plausible single-byte code pages, prefer windows-1252: for mostly-ASCII
Western text cp1250/cp1257 score the same, and a wrong pick turns 'è' into 'č'. (Browsers
make the same choice: WHATWG decodes latin-1 labels as windows-1252.)"""


def _detect_encoding(data: bytes) -> str:
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        raise UnsupportedType("The file is neither a known document type nor text")
    least_chaos = min(m.chaos for m in matches)
    tied = [m for m in matches if m.chaos <= least_chaos + _TIE_CHAOS]
    most_coherent = max(m.coherence for m in tied)
    tied = [m for m in tied if m.coherence >= most_coherent - _TIE_COHERENCE]
    preferred = next((m for m in tied if _WESTERN_DEFAULT in m.could_be_from_charset), tied[0])
    return str(preferred.encoding)


_MIN_DISTINCT_CHARS = 4
"""Filler (a byte repeated, as in padding or wiped disks) decodes to one character over and
over in some code page; no document is written with fewer than four distinct characters."""


_ASCII_SPACE = " \t\r\n\f\v"


def _require_text(text: str) -> str:
    sample = text[:SNIFF_BYTES]
    if sample and not sample.strip(_ASCII_SPACE):  # not str.strip(): a filler byte may decode to U+00A0
        raise EmptyDocument("The file holds only whitespace: there is no text to index")
    if _bad_char_ratio(text) > _MAX_BAD_CHAR_RATIO or (
        len(sample) >= 64 and len(set(sample)) < _MIN_DISTINCT_CHARS
    ):
        raise UnsupportedType("The file is neither a known document type nor text")
    return text


def _bad_char_ratio(text: str) -> float:
    if not text:
        return 0.0
    sample = text[:SNIFF_BYTES]
    bad = sum(
        1
        for ch in sample
        if ch == "\ufffd"
        or (unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs") and ch not in _TEXT_CONTROLS)
    )
    return bad / len(sample)


_HTML_ROOT = re.compile(r"<(html|head|body)[\s>]", re.IGNORECASE)
_HTML_FRAGMENT = re.compile(r"<([a-z][a-z0-9]*)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _looks_like_html(text: str) -> bool:
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html")):
        return True
    if start.startswith("<svg") or (start.startswith("<?xml") and "<svg" in start[:2048]):
        raise UnsupportedType("SVG images are not supported")
    if not start.startswith("<"):
        return False
    window = start[:4096]
    return bool(_HTML_ROOT.search(window) or _HTML_FRAGMENT.search(window))


_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_SETEXT = re.compile(r"^[^\n]*\S[^\n]*\n {0,3}(=+|-{2,})[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]\n]+\]\([^)\s]+[^)]*\)")
_LIST = re.compile(r"^ {0,3}([-*+]|\d{1,3}[.)])[ \t]+\S", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__)[^\s*_][^*_\n]*(\*\*|__)")


def _looks_like_markdown(text: str) -> bool:
    """Score Markdown cues; a lone ``#`` line or list is not enough, since plain text has those."""
    headings = len(_ATX.findall(text)) + len(_SETEXT.findall(text))
    fences = len(_FENCE.findall(text)) // 2
    others = min(len(_LINK.findall(text)), 2) + min(len(_EMPHASIS.findall(text)), 2) + min(fences, 2)
    has_lists = bool(_LIST.search(text))
    return headings >= 2 or (headings >= 1 and (others >= 1 or has_lists)) or others >= 3
