"""The one error tree of the project.

Every error carries a stable machine-readable ``code`` and an HTTP status so that
``api/`` can render it as RFC 9457 problem+json and the CLI as a one-line message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RagError(Exception):
    """Base of every error the service raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.extra: dict[str, Any] = extra

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


# --- request problems (4xx) -------------------------------------------------


class InvalidRequest(RagError):
    code = "invalid_request"
    status = 422
    title = "Invalid request"


class UnknownHost(RagError):
    code = "unknown_host"
    status = 400
    title = "Not served for this host name"


class RequestTimeout(RagError):
    code = "request_timeout"
    status = 408
    title = "The request body stopped arriving"


class NotFound(RagError):
    code = "not_found"
    status = 404
    title = "Not found"


class Unauthorized(RagError):
    code = "unauthorized"
    status = 401
    title = "Missing or invalid API key"


class Forbidden(RagError):
    code = "forbidden"
    status = 403
    title = "Not allowed for this key"


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"
    title = "Refused from another site's page"


class RateLimited(RagError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"

    def __init__(self, message: str | None = None, retry_after: float = 1.0, **extra: Any) -> None:
        super().__init__(message, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class QueueFull(RateLimited):
    code = "queue_full"
    title = "Ingestion queue is full"


class BudgetExceeded(RagError):
    code = "budget_exceeded"
    status = 402
    title = "Spending budget exceeded"


class Conflict(RagError):
    code = "conflict"
    status = 409
    title = "Conflict"


class DataDirLocked(Conflict):
    code = "data_dir_locked"
    title = "The data directory is locked by another writer"


class EmbeddingModelMismatch(Conflict):
    """Vectors from one embedding model searched or stored among another model's vectors.

    Each collection records the model, backend and dimension its vectors were made with; a
    query or write through anything else would compare unrelated vector spaces.
    """

    code = "embedding_model_mismatch"
    title = "The collection is indexed with another embedding model"


class PageNotAvailable(Conflict):
    """A page that has no image to show: the document's format has no pages (text, HTML, Word), or it
    was stored before the service kept originals and word boxes (upload it again)."""

    code = "page_not_available"
    title = "This page cannot be shown as an image"


# --- document problems ------------------------------------------------------


class DocumentError(RagError):
    """A document that cannot be ingested; nothing already stored is touched."""

    code = "invalid_document"
    status = 422
    title = "The document cannot be read"


class EmptyDocument(DocumentError):
    code = "empty_document"
    title = "The document is empty"


class UnsupportedType(DocumentError):
    code = "unsupported_type"
    status = 415
    title = "Unsupported document type"


class CorruptDocument(DocumentError):
    code = "corrupt_document"
    title = "The document is corrupt or truncated"


class EncryptedDocument(DocumentError):
    code = "encrypted_document"
    title = "The document is encrypted"


class TooLarge(DocumentError):
    code = "too_large"
    status = 413
    title = "Too large"


class TooManyPages(TooLarge):
    code = "too_many_pages"
    title = "The document has more pages than allowed"


class PageTooLarge(TooLarge):
    code = "page_too_large"
    title = "A page is larger than allowed"


class ImageTooLarge(TooLarge):
    code = "image_too_large"
    title = "The image has more pixels than allowed (possible decompression bomb)"


class ResourceLimit(DocumentError):
    """Reading the document needed more memory, time or output than one document may use
    (``RAG_PARSE_*``, ``RAG_MAX_INFLATION``, ``RAG_MAX_DOCUMENT_CHARS``); never retried."""

    code = "resource_limit"
    title = "Reading the document needs more memory or time than allowed"


class NoTextFound(DocumentError):
    code = "no_text"
    title = "No text could be read from the document"


# --- dependencies and runtime (5xx) -----------------------------------------


class DependencyUnavailable(RagError):
    code = "dependency_unavailable"
    status = 503
    title = "A required component is unavailable"


class OcrUnavailable(DependencyUnavailable):
    code = "ocr_unavailable"
    title = "Tesseract OCR is not installed"


class ModelUnavailable(DependencyUnavailable):
    code = "model_unavailable"
    title = "A model could not be loaded"


class IndexUnavailable(DependencyUnavailable):
    code = "index_unavailable"
    title = "The index is unavailable"


class DatabaseUnavailable(DependencyUnavailable):
    code = "database_unavailable"
    title = "The database is unavailable"


class BlobUnavailable(DependencyUnavailable):
    code = "blob_store_unavailable"
    title = "The blob store is unavailable"


class DeadlineExceeded(RagError):
    code = "deadline_exceeded"
    status = 504
    title = "The request took longer than its deadline"


class ProviderError(RagError):
    """A language-model provider failed; ``retryable`` says whether trying again can help."""

    code = "provider_error"
    status = 502
    title = "The language-model provider failed"
    retryable: bool = False

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str = "",
        retryable: bool | None = None,
        retry_after: float | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message, provider=provider, **extra)
        self.provider = provider
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    status = 503
    title = "No language-model provider could answer"


class RerankerUnavailable(DependencyUnavailable):
    """The re-ranker could not score this query; the pipeline falls back to the fused order."""

    code = "reranker_unavailable"
    title = "The re-ranker is unavailable"


# --- LLM gateway (appended by the gateway) ------------------------------------


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    status = 504
    title = "The language-model provider did not answer in time"
    retryable = True


class ProviderRateLimited(ProviderError):
    """The provider said 429, or our own per-provider limit would have to wait too long."""

    code = "provider_rate_limited"
    status = 503
    title = "The language-model provider is rate limiting"
    retryable = True


class ProviderRejected(ProviderError):
    """400/404/422: the request itself is wrong, so trying again cannot help."""

    code = "provider_rejected"
    status = 502
    title = "The language-model provider rejected the request"


class ProviderAuthFailed(ProviderError):
    code = "provider_auth_failed"
    status = 502
    title = "The language-model provider refused the credentials"


class MalformedResponse(ProviderError):
    code = "provider_malformed_response"
    status = 502
    title = "The language-model provider sent a malformed response"
    retryable = True


class TruncatedOutput(ProviderError):
    code = "provider_output_truncated"
    status = 502
    title = "The model's output was cut off at its token limit"


class InvalidOutput(ProviderError):
    code = "provider_invalid_output"
    status = 502
    title = "The model's output did not match the required JSON shape"


class StreamInterrupted(ProviderError):
    code = "provider_stream_interrupted"
    status = 502
    title = "The answer stream broke off before it was complete"


class CircuitOpen(ProviderError):
    code = "provider_circuit_open"
    status = 503
    title = "The provider is skipped while its circuit breaker is open"


class ConfigurationError(RagError):
    code = "configuration_error"
    status = 500
    title = "The service is misconfigured"


# --- evaluation -------------------------------------------------------------


class InvalidGoldenSet(InvalidRequest):
    """A golden set (questions, manifest or documents) that cannot be read as given."""

    code = "invalid_golden_set"
    title = "The golden set cannot be read"


class GoldenSetNotFound(NotFound):
    code = "golden_set_not_found"
    title = "No such golden set"


# --- HTTP service (appended by the API) ----------------------------------------


class MethodNotAllowed(RagError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class NotReady(DependencyUnavailable):
    """``/readyz``: a part the service needs is not loaded or not working yet."""

    code = "not_ready"
    title = "The service is not ready"


class JobCancelled(Conflict):
    """An ingestion job cancelled by its owner, or whose document was deleted before it ran."""

    code = "cancelled"
    title = "The job was cancelled"


# --- evaluation against a running service (appended by eval) ---------------------


class ServiceUnreachable(DependencyUnavailable):
    """``rag eval --url``: the service did not answer (refused, timed out, not HTTP)."""

    code = "service_unreachable"
    title = "The service cannot be reached"


class RemoteServiceError(RagError):
    """``rag eval --url``: the service answered with a problem; its code and detail are in the message."""

    code = "remote_service_error"
    status = 502
    title = "The service refused the request"


def error_classes() -> list[type[RagError]]:
    """Every class of the tree, the root first."""
    seen: list[type[RagError]] = []
    pending: list[type[RagError]] = [RagError]
    while pending:
        cls = pending.pop()
        seen.append(cls)
        pending.extend(cls.__subclasses__())
    return seen


def error_from_code(code: str, message: str, **extra: Any) -> RagError:
    """The error another process reported by its code (a parser child), as the class it was."""
    for cls in error_classes():
        if cls.code == code:
            return cls(message, **extra)
    return RagError(message, **extra)
