"""What one document may inflate to, relative to its real size and capped absolutely.

A decompression bomb is small on the wire and huge once read: a 611 KB .docx whose XML inflates
to 210 MB held the only worker for minutes. Real documents read at a few characters per byte
(clean PDFs 1-5, .docx 2-10, text at most 1, scans far below), bombs in the thousands; a budget of
``RAG_MAX_INFLATION`` times the file, with a floor for small files and a ceiling for every file,
separates the two without a cost to real ones.
"""

from __future__ import annotations

from rag.errors import ResourceLimit
from rag.settings import Settings

CHARACTER_FLOOR = 1_000_000
"""A small file may always read to this many characters."""
PACKAGE_FLOOR = 16 * 1024 * 1024
"""A small .docx may always inflate to this many bytes (styles and themes are most of a tiny one)."""
PACKAGE_CEILING_FACTOR = 20
"""No .docx inflates beyond this many times the upload limit, whatever its size."""


def character_budget(size_bytes: int, settings: Settings) -> int:
    """The characters a file of ``size_bytes`` may read to."""
    return min(settings.max_document_chars, max(CHARACTER_FLOOR, int(settings.max_inflation * size_bytes)))


def package_budget(size_bytes: int, settings: Settings) -> int:
    """The bytes a ZIP package (.docx) of ``size_bytes`` may inflate to."""
    ceiling = PACKAGE_CEILING_FACTOR * settings.max_upload_bytes
    return min(ceiling, max(PACKAGE_FLOOR, int(settings.max_inflation * size_bytes)))


def check_characters(read: int, size_bytes: int, settings: Settings) -> None:
    """Raise ``ResourceLimit`` once a document has read more characters than its budget."""
    budget = character_budget(size_bytes, settings)
    if read > budget:
        raise ResourceLimit(
            f"the document reads to more than {budget:,} characters from {size_bytes:,} bytes"
            f" (RAG_MAX_INFLATION={settings.max_inflation:g}, RAG_MAX_DOCUMENT_CHARS="
            f"{settings.max_document_chars:,})",
            limit="characters",
        )


__all__ = ["character_budget", "check_characters", "package_budget"]
