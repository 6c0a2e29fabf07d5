"""Plain text in any encoding -> one page."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import LoadedDocument, single_page
from ingest.sniff import decode_text
from rag.errors import EmptyDocument
from rag.settings import Settings


def normalize_newlines(text: str) -> str:
    """One newline convention, so character offsets mean the same for every source."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_text(path: Path, settings: Settings) -> LoadedDocument:
    """Decode (charset detected, never assumed) and return the text as page 1."""
    text = normalize_newlines(decode_text(path.read_bytes())).replace("\x00", "")
    if not text.strip():
        raise EmptyDocument("The text file contains only whitespace")
    return single_page("text", text.strip("\n"), None)
