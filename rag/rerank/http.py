"""A remote re-ranker speaking text-embeddings-inference's ``/rerank`` (also Cohere/Jina's shape)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from rag.errors import RerankerUnavailable
from rag.logs import redact


def _parse(payload: Any, n: int) -> list[float]:
    """Accept TEI's ``[{index, score}]`` and Cohere/Jina's ``{results: [{index, relevance_score}]}``."""
    items = payload.get("results") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise ValueError("expected a list of {index, score}")
    scores: list[float | None] = [None] * n
    for item in items:
        index = item["index"]
        value = item["score"] if "score" in item else item["relevance_score"]
        if not isinstance(index, int) or not 0 <= index < n or scores[index] is not None:
            raise ValueError(f"bad or repeated index {index!r}")
        scores[index] = float(value)
    if any(s is None for s in scores):
        raise ValueError("some passages were not scored")
    return [float(s) for s in scores if s is not None]


class HttpReranker:
    """Scores in batches (TEI refuses more than its ``max-client-batch-size``, 32 by default)."""

    available = True
    reason: str | None = None

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 5.0,
        batch_size: int = 32,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = f"http:{self.base_url}"
        self.batch_size = max(1, batch_size)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    def close(self) -> None:
        self._client.close()

    def _score_batch(self, query: str, texts: list[str]) -> list[float]:
        url = f"{self.base_url}/rerank"
        try:
            response = self._client.post(url, json={"query": query, "texts": texts, "raw_scores": False})
        except httpx.TimeoutException as exc:
            raise RerankerUnavailable(f"re-ranker at {self.base_url} timed out") from exc
        except httpx.HTTPError as exc:
            raise RerankerUnavailable(
                f"re-ranker at {self.base_url} unreachable: {exc.__class__.__name__}"
            ) from exc
        if response.status_code != 200:
            body = redact(response.text[:200])
            raise RerankerUnavailable(f"re-ranker at {self.base_url} answered {response.status_code}: {body}")
        try:
            return _parse(response.json(), len(texts))
        except (ValueError, KeyError, TypeError) as exc:
            raise RerankerUnavailable(
                f"re-ranker at {self.base_url} sent a malformed response: {exc}"
            ) from exc

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        texts = list(passages)
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(self._score_batch(query, texts[start : start + self.batch_size]))
        return out
