"""The HTTP side of the sample documents: a ready-to-paste ``curl`` line that asks about them.

Queueing them is ``service.samples``; this module only knows how to reach the API.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from rag.settings import Settings
from service.samples import QUESTIONS


def curl_line(settings: Settings, directory: Path, *, auth: bool) -> str:
    """A command that asks the first example question (never prints a key)."""
    question = "What is in these documents?"
    try:
        examples = json.loads((directory / QUESTIONS).read_text(encoding="utf-8"))
        question = str(examples[0]["question"])
    except (OSError, ValueError, LookupError, TypeError):
        pass
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    body = json.dumps({"question": question})
    header = ' -H "Authorization: Bearer $RAG_API_KEY"' if auth else ""
    return (
        "Sample documents are being ingested; ask about them with:\n"
        f"  curl -s http://{host}:{settings.port}/v1/query{header} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}"
    )
