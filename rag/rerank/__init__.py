"""Re-rankers: score (question, passage) pairs more carefully than the first-stage retrievers."""

from rag.rerank.base import Reranker
from rag.rerank.factory import build_reranker

__all__ = ["Reranker", "build_reranker"]
