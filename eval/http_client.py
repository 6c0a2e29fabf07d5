"""``rag eval --url``: evaluate a running service through its public HTTP API.

Documents go up as ``POST /v1/documents`` (multipart, a batch at a time), each job is followed
with ``GET /v1/jobs/{id}`` until it finishes, questions go to ``POST /v1/search`` and
``POST /v1/query``. Responses are read into the service's own models, so the runner cannot
tell this target from the in-process one. Failures become ``rag.errors``: a refused
connection is ``ServiceUnreachable``, a problem response is ``RemoteServiceError`` naming the
service's own code.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from eval.golden import GoldenSet
from rag.answer import Answer, SearchResult
from rag.errors import RemoteServiceError, ServiceUnreachable

UPLOAD_BATCH = 50
"""Files per upload request (the API takes up to 100)."""
MAX_WAITS = 10
"""How many times one request waits out a 429/503 with ``Retry-After`` before giving up."""
MAX_WAIT_S = 60.0


class HttpTarget:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        job_timeout_s: float = 1800.0,
        poll_s: float = 0.5,
        bypass_cache: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.description = f"service at {self.url}"
        self.job_timeout_s = job_timeout_s
        self.poll_s = poll_s
        self.bypass_cache = bypass_cache
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout_s), transport=transport
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(MAX_WAITS + 1):
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise ServiceUnreachable(
                    f"{method} {self.url}{path}: {exc.__class__.__name__}: {exc}"
                ) from exc
            wait = _retry_after(response)
            if wait is None or attempt == MAX_WAITS:
                break
            # the service's rate limit or queue is full: an evaluation waits its turn like any client
            await asyncio.sleep(wait)
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise RemoteServiceError(
                    f"{method} {path} answered {response.status_code} without JSON"
                ) from exc
        raise _problem(method, path, response)

    async def ensure_documents(self, golden: GoldenSet, collection: str) -> dict[str, str]:
        ids: dict[str, str] = {}
        jobs: dict[str, str] = {}
        docs = golden.documents
        for start in range(0, len(docs), UPLOAD_BATCH):
            batch = docs[start : start + UPLOAD_BATCH]
            files = [("files", (d.id, d.read_bytes(), "application/octet-stream")) for d in batch]
            body = await self._request("POST", "/v1/documents", files=files, data={"collection": collection})
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or len(items) != len(batch):
                raise RemoteServiceError("POST /v1/documents did not list one item per file")
            for doc, item in zip(batch, items, strict=True):
                ids.setdefault(str(item["document_id"]), doc.id)
                if item.get("job_id"):
                    jobs[str(item["job_id"])] = doc.id
        await self._wait(jobs)
        return ids

    async def _wait(self, jobs: dict[str, str]) -> None:
        """Follow every job to its end; one failed document fails the run (the set would be incomplete)."""
        deadline = time.monotonic() + self.job_timeout_s
        pending = dict(jobs)
        while pending:
            for job_id, name in list(pending.items()):
                job = await self._request("GET", f"/v1/jobs/{job_id}")
                state = job.get("state")
                if state == "succeeded":
                    del pending[job_id]
                elif state == "failed":
                    error = job.get("error") or {}
                    code, message = error.get("code", "unknown"), error.get("message", "")
                    raise RemoteServiceError(f"ingestion of {name} failed: {code}: {message}")
            if pending:
                if time.monotonic() > deadline:
                    raise RemoteServiceError(
                        f"{len(pending)} ingestion jobs still unfinished after {self.job_timeout_s:g} s"
                    )
                await asyncio.sleep(self.poll_s)

    async def search(self, question: str, collection: str, k: int) -> SearchResult:
        body = {"query": question, "collection": collection, "top_k": k}
        try:
            data = await self._request("POST", "/v1/search", json=body)
        except RemoteServiceError as exc:
            limit = exc.extra.get("limit")
            if not isinstance(limit, int) or limit >= k:
                raise
            # the server bounds top_k; search as deep as it allows
            data = await self._request("POST", "/v1/search", json=body | {"top_k": limit})
        return _parse(SearchResult, data, "/v1/search")

    async def ask(self, question: str, collection: str) -> Answer:
        body = {"question": question, "collection": collection, "bypass_cache": self.bypass_cache}
        data = await self._request("POST", "/v1/query", json=body)
        return _parse(Answer, data, "/v1/query")

    async def aclose(self) -> None:
        await self._client.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before retrying, when the service asked for it (429, or 503 with Retry-After)."""
    if response.status_code not in (429, 503):
        return None
    raw = response.headers.get("Retry-After")
    if raw is None:
        return 1.0 if response.status_code == 429 else None
    try:
        return min(max(float(raw), 0.1), MAX_WAIT_S)
    except ValueError:
        return 1.0


def _problem(method: str, path: str, response: httpx.Response) -> RemoteServiceError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") or "error"
        detail = body.get("detail") or body.get("title") or ""
        extra = {k: v for k, v in body.items() if k == "limit"}
        return RemoteServiceError(f"{method} {path}: {response.status_code} {code}: {detail}", **extra)
    return RemoteServiceError(f"{method} {path}: {response.status_code} {response.text[:200]}")


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(model: type[_Model], data: Any, path: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RemoteServiceError(
            f"{path} answered a body this client cannot read: {exc.errors()[0]}"
        ) from exc


__all__ = ["HttpTarget"]
