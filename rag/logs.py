"""Structured logging that never prints secrets."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRET_PATTERNS = [
    # a bearer token is at least 8 characters: "Bearer KEY" in a hint is a placeholder, not a key
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    # the value after a secret's name; an auth scheme ("Bearer", "Basic") is kept, the value hidden
    re.compile(
        r"(?i)((?:api[_-]?key|x-api-key|authorization|password|secret|token)[\"']?\s*[:=]\s*[\"']?"
        r"(?:(?:bearer|basic)\s+)?)[^\s\"',}]+"
    ),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    # a password in a URL's user part (postgresql://user:PASSWORD@host, redis://:PASSWORD@host)
    re.compile(r"(://[^:/@\s]*:)[^@\s]+(?=@)"),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        rid = request_id_var.get()
        if self.as_json:
            payload: dict[str, Any] = {
                "ts": round(record.created, 3),
                "level": record.levelname.lower(),
                "logger": record.name,
                "event": record.getMessage(),
                **fields,
            }
            if rid:
                payload["request_id"] = rid
            if record.exc_info:
                payload["error"] = self.formatException(record.exc_info)
            return redact(json.dumps(payload, default=str))
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if rid:
            line += f" request_id={rid}"
        if extra:
            line += f" {extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure_logging(level: str = "INFO", as_json: bool = False) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_rag", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._rag = True  # type: ignore[attr-defined]
    handler.setFormatter(_Formatter(as_json))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "chromadb", "sentence_transformers", "urllib3", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with structured ``fields`` (rendered as JSON or key=value)."""
    logger.log(level, event, extra={"fields": fields})
