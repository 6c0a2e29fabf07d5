"""Build the configured re-ranker without ever failing start-up."""

from __future__ import annotations

import logging

from rag.errors import RagError
from rag.logs import log_event
from rag.rerank.base import Reranker
from rag.rerank.cross_encoder import CrossEncoderReranker, reranker_name
from rag.rerank.http import HttpReranker
from rag.rerank.none import NoReranker, UnavailableReranker
from rag.settings import Settings

logger = logging.getLogger(__name__)


def build_reranker(settings: Settings, *, device: str | None = None) -> Reranker:
    """The configured re-ranker, or one that is unavailable and says why (never raises)."""
    kind = settings.reranker
    if kind == "none":
        return NoReranker()
    if kind == "http":
        if not settings.reranker_url:
            return UnavailableReranker("http", "RAG_RERANKER=http but RAG_RERANKER_URL is not set")
        key = settings.reranker_api_key.get_secret_value() if settings.reranker_api_key else None
        return HttpReranker(settings.reranker_url, api_key=key, timeout_s=settings.reranker_timeout_s)
    name = reranker_name(settings.reranker_model, settings.reranker_backend)
    try:
        return CrossEncoderReranker(
            settings.reranker_model,
            backend=settings.reranker_backend,
            device=device or settings.embedding_device,
        )
    except RagError as exc:
        log_event(logger, "reranker_unavailable", logging.WARNING, reranker=name, reason=exc.message)
        return UnavailableReranker(name, exc.message)
    except Exception as exc:  # start-up must survive anything a model loader throws
        reason = f"{exc.__class__.__name__}: {exc}"[:240]
        log_event(logger, "reranker_unavailable", logging.WARNING, reranker=name, reason=reason)
        return UnavailableReranker(name, reason)
