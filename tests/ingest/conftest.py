"""Helpers for the loader tests: real files from the shared datasets, and ways to compare text."""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.loaders import LoadedDocument, load_document
from rag.settings import Settings
from rag.types import Page

_TOKEN = re.compile(r"[a-z0-9]+")


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def word_counts(text: str) -> collections.Counter[str]:
    """Lower-case alphanumeric tokens of two or more characters (1-char tokens are OCR noise)."""
    return collections.Counter(t for t in _TOKEN.findall(text.lower()) if len(t) > 1)


def word_recall(gold: str, got: str) -> float:
    """Share of the gold tokens (as a multiset) that ``got`` contains."""
    gold_counts = word_counts(gold)
    total = sum(gold_counts.values())
    assert total > 0, "gold text has no words"
    return sum((gold_counts & word_counts(got)).values()) / total


def read_all(path: Path, settings: Settings) -> tuple[LoadedDocument, list[Page]]:
    """Load and pull every page, so errors raised lazily surface too."""
    document = load_document(path, settings)
    return document, list(document.pages)


@pytest.fixture(scope="session")
def financebench(datasets: Path) -> Path:
    return datasets / "financebench"


@pytest.fixture(scope="session")
def financebench_evidence(financebench: Path) -> list[dict]:
    """One record per evidence item: doc, zero-based page, text."""
    rows = []
    for line in (financebench / "data" / "financebench_open_source.jsonl").read_text().splitlines():
        record = json.loads(line)
        for evidence in record["evidence"]:
            rows.append(
                {
                    "doc": record["doc_name"],
                    "page0": int(evidence["evidence_page_num"]),
                    "text": evidence["evidence_text"],
                }
            )
    return rows


@pytest.fixture(scope="session")
def text_layer_page(financebench: Path) -> Callable[[str, int], str]:
    """The gold text of a FinanceBench page (zero-based), read with pypdf directly."""
    from pypdf import PdfReader

    readers: dict[str, PdfReader] = {}

    def get(doc: str, page0: int) -> str:
        if doc not in readers:
            readers[doc] = PdfReader(financebench / "pdfs" / f"{doc}.pdf")
        return readers[doc].pages[page0].extract_text()

    return get
