"""The one ``Settings`` object: built once at start-up from ``RAG_*`` variables (and ``.env``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service. See the README's configuration table for meanings."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- storage ---------------------------------------------------------------
    data_dir: Path = Path("./var")
    chroma_url: str | None = None
    database_url: str | None = None
    """``postgresql://user:pass@host/db`` puts every row store (catalog, jobs, budgets,
    conversations) on PostgreSQL; unset, SQLite files under the data directory."""
    migrate_on_start: bool = True
    """Apply pending schema migrations when the service starts (else ``rag migrate``)."""
    blob_url: str | None = None
    """Where uploaded and original bytes live for every process: ``file:///shared/dir`` or
    ``s3://bucket/prefix``; unset, under the data directory."""
    s3_endpoint_url: str | None = None
    """An S3-compatible server's endpoint (MinIO, moto, ...); credentials and region come from
    the usual ``AWS_*`` variables."""
    originals_cache_mb: int = Field(default=2048, ge=1)
    """With a shared blob store: the most this process keeps of originals fetched for page
    rendering; the least recently used go first."""
    chroma_hnsw_ef_search: int = 100
    default_collection: str = "default"

    # --- logging ---------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False

    # --- models ----------------------------------------------------------------
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    """The runtime of new collections' embeddings (``rag.embedder``); a collection keeps its own."""
    embedding_batch_size: int = 4
    """Texts per forward pass. Attention's scores grow with the padded batch: on ~150-token chunks
    batch 4 beat 32 on every backend (``python -m eval.bench --only embedding_backends``)."""
    embedding_device: str = "cpu"
    embedding_threads: int = Field(default=1, ge=0)
    """torch CPU threads (0: torch's default, one per core)."""
    model_cache_dir: Path | None = None
    """Where a model shipped as parts is joined and extracted (default: ``<data dir>/models``)."""
    tiktoken_encoding: str = "cl100k_base"

    # --- ingestion -------------------------------------------------------------
    chunk_tokens: int = 200
    chunk_overlap_tokens: int = 40
    max_upload_mb: int = 50
    max_pdf_pages: int = 2000
    max_page_side_points: float = 14400.0
    max_image_pixels: int = 60_000_000
    max_inflation: float = Field(default=100.0, gt=0)
    """Characters read (and bytes a .docx inflates to) per byte of the file: a decompression bomb's
    ratio is in the thousands, real documents' below 30 (see the README's limits table)."""
    max_document_chars: int = Field(default=20_000_000, ge=1)
    max_chunks_per_document: int = Field(default=50_000, ge=1)
    parse_isolation: Literal["process", "inline"] = "process"
    """``process``: each document is read in a child process under the limits below; ``inline``:
    in the calling thread, without them (debugging and profiling only)."""
    parse_memory_mb: int = Field(default=2048, ge=128)
    """The parser child's address space (tesseract, which it starts, gets the same limit)."""
    parse_niceness: int = Field(default=10, ge=0, le=19)
    """The parser child's (and tesseract's) niceness: on a busy machine reading the next pages
    yields the CPU to the embedder and to queries, which wait on nothing else (int8 ingestion of a
    filing: 0.92 of its raw embedder at 10, 0.90 at 0, medians of 6 rounds side by side)."""
    parse_page_timeout_s: float = Field(default=120.0, gt=0)
    """How long reading one page (OCR included) may take."""
    parse_timeout_s: float = Field(default=3600.0, gt=0)
    """How long reading one document may take in all (waiting for the embedder not counted)."""
    pdf_window_pages: int = 8
    pdf_text_engine: Literal["pdfium", "pypdf"] = "pdfium"
    ocr_enabled: bool = True
    ocr_language: str = "eng"
    ocr_dpi: int = 200
    ocr_min_chars: int = 40
    ocr_min_printable_ratio: float = 0.85
    ocr_thread_limit: int = 1
    ocr_workers: int = Field(default=0, ge=0)
    """Pages OCR'd at once, each by its own tesseract process (0: the cores / ``RAG_WORKERS``)."""
    tables: bool = True  # rewrite table rows with their column labels; chunk tables as blocks
    context_headers: Literal["off", "lexical", "both"] = "lexical"
    """Each chunk's header (document, section or table, page): keyword-indexed (``lexical``), also
    embedded (``both``, contextual retrieval), or none (``off``). See the README's ablation."""

    # --- retrieval and answering -------------------------------------------------
    dense_k: int = 50
    lexical_k: int = 50
    fusion: Literal["rrf", "weighted"] = "weighted"
    rrf_k: int = 60
    fusion_dense_weight: float = 0.5
    named_document_boost: float = Field(default=1.0, ge=0)
    """Chunks of documents the question names (filer, title, period) get their fused score
    multiplied by 1 + boost x match weight; 0 turns the lever off. Never a filter."""
    query_vocabulary: Literal["off", "finance"] = "finance"
    """``finance``: the keyword query also gets the filings' names of the financial terms a
    question uses ("balance sheet" -> "statements of financial position"). See rag.vocabulary."""
    query_fiscal_years: bool = True
    """The keyword query also gets the bare year of "FY2018" / "FY18" / "fiscal year 2018", which
    statement columns state ("2018") and the analyzer would keep as the one word "fy2018"."""
    named_documents: int = Field(default=3, ge=1)
    """How many of the named documents are also searched on their own, so their chunks compete."""
    statement_boost: float = Field(default=1.0, ge=0)
    """When a question names a financial statement ("cash flow statement", "statement of income"),
    chunks titled as that statement get their fused score multiplied by 1 + boost; 0: off."""
    implied_statement_boost: float = Field(default=2.0, ge=0)
    """When a question asks for a statement's line item without naming the statement ("net sales",
    "inventory", "capex"), chunks titled as that statement get 1 + this boost; 0: off."""
    max_chunks_per_page: int = Field(default=0, ge=0)
    """Candidates past the first N from one page move behind those of other pages (0: off), so
    a statement split into several chunks does not fill the top of the list alone."""
    top_k: int = 8
    reranker: Literal["cross-encoder", "http", "none"] = "cross-encoder"
    reranker_model: str = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    reranker_backend: Literal["torch", "onnx"] = "torch"
    reranker_url: str | None = None
    reranker_api_key: SecretStr | None = None
    reranker_timeout_s: float = 5.0
    rerank_candidates: int = 30
    relevance_floor: float | None = None
    dense_floor: float | None = 0.43
    context_budget_tokens: int = 3000
    pack_neighbours: int = Field(default=0, ge=0, le=5)
    """Small to big: chunks either side of each retrieved one, on its page, packed when budget is left."""

    # --- LLM gateway -------------------------------------------------------------
    llm_chain: str = "extractive"
    llm_last_resort: bool = True
    providers_file: Path | None = None
    secrets_file: Path | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str = "claude-3-5-haiku-latest"
    llm_max_tokens: int = 512
    llm_temperature: float = 0.0
    llm_deadline_s: float = 60.0
    llm_max_attempts: int = 3
    llm_backoff_base_s: float = 0.5
    llm_backoff_max_s: float = 8.0
    llm_retry_after_cap_s: float = 30.0
    breaker_failure_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    llm_connect_timeout_s: float = 5.0
    llm_read_timeout_s: float = 30.0
    llm_total_timeout_s: float = 60.0
    llm_stream_idle_timeout_s: float = 15.0
    llm_rate_wait_s: float = 2.0
    cache_enabled: bool = True
    cache_ttl_s: int = 7 * 24 * 3600
    cache_nonzero_temperature: bool = False
    redis_url: str | None = None
    budget_daily_usd: float | None = None
    budget_per_key_daily_usd: float | None = None
    budget_action: Literal["fallback", "fail"] = "fallback"

    # --- follow-ups ----------------------------------------------------------------
    followup_rewrite: Literal["auto", "offline", "off"] = "auto"
    """A follow-up that refers back ("And in 2022?") is rewritten standalone before retrieval:
    ``auto`` by the LLM when the chain has a real model (else the offline rules), ``offline`` by
    the rules only, ``off`` not at all (``rag.followups``)."""
    followup_history_turns: int = Field(default=3, ge=0)
    """Earlier turns a rewrite may draw on (newest last)."""
    followup_rewrite_timeout_s: float = Field(default=5.0, gt=0)
    """How long the LLM rewrite may take before the offline rewrite is used instead."""
    followup_rewrite_max_tokens: int = Field(default=64, ge=8)

    # --- HTTP service ------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None
    admin_key: SecretStr | None = None
    auth_disabled: bool = False
    metrics_open: bool = False
    """``/metrics`` without a key (a scraper on a private network); else it needs the admin key."""
    allowed_hosts: str = "localhost,127.0.0.1,::1"
    """Host names served (comma-separated; ``*``: any, behind a proxy that checks ``Host``).
    Other names get 400 ``unknown_host``: DNS rebinding cannot reach the service."""
    cors_origins: str = ""
    """Origins (comma-separated) whose pages may call the API with a key; CORS is off when empty.
    Without API keys, another site's writes stay refused (``cross_site_request``) whatever this says."""
    workers: int = 1
    run_jobs: bool = True
    """``rag serve`` runs ingestion jobs in its own threads; ``false`` on API replicas whose
    jobs ``rag worker`` processes run (they share the queue through ``RAG_DATABASE_URL``)."""
    job_lease_s: float = Field(default=30.0, gt=0)
    """How long a claimed job stays its worker's without a heartbeat (every third of it)."""
    max_queue_depth: int = 100
    """Queued ingestion jobs per tenant (429 ``queue_full`` past it, counting only the tenant's)."""
    max_queued_mb: int = Field(default=1024, ge=1)
    """Bytes of uploads a tenant may have waiting to be ingested (429 ``queue_full`` past it)."""
    max_question_chars: int = 2000
    max_top_k: int = 50
    rate_limit_per_minute: int = 120
    failed_auth_per_minute: int = 20
    """Failed authentications a client address may make a minute (then 429); 0: no limit."""
    query_deadline_s: float = 60.0
    max_connections: int = Field(default=500, ge=1)
    """Connections and requests in progress at once (uvicorn's ``limit_concurrency``; 503 past it)."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """Time a client has to send a request's line and headers; the connection is closed after it."""
    body_idle_timeout_s: float = Field(default=30.0, gt=0)
    """Longest pause while a request body arrives (408 ``request_timeout`` past it)."""
    samples_dir: Path | None = None

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_size(cls, v: int, info: object) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    @property
    def lexical_dir(self) -> Path:
        return self.data_dir / "lexical"

    @property
    def conversations_path(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "llm_cache.sqlite3"

    @property
    def budget_path(self) -> Path:
        return self.data_dir / "llm_budget.sqlite3"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def originals_dir(self) -> Path:
        return self.data_dir / "originals"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"


def load_settings(**overrides: object) -> Settings:
    """Build the settings once; ``overrides`` win over the environment (tests, CLI flags)."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.chunk_overlap_tokens >= settings.chunk_tokens:
        raise ValueError("RAG_CHUNK_OVERLAP_TOKENS must be smaller than RAG_CHUNK_TOKENS")
    return settings


__all__ = ["Field", "Settings", "load_settings"]
