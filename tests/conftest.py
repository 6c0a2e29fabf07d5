"""Shared fixtures: isolated settings per test, the real embedding model loaded once."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from rag.settings import Settings, load_settings

if TYPE_CHECKING:
    from deploy.engines import PostgresServer

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("RAG_DATASETS_DIR", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not DATASETS.exists():
        pytest.fail(f"datasets not found at {DATASETS}; set RAG_DATASETS_DIR")
    return DATASETS


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "var")
        overrides.setdefault("reranker", "none")
        return load_settings(**overrides)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from rag.embedder import get_embedder

    return get_embedder("sentence-transformers/all-MiniLM-L6-v2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def tiny_embedding_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real sentence-transformers model with random weights: fast, for bulk and crash tests."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rag.models import bundled_model_path

    base = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(
        str(bundled_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    )
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    target = tmp_path_factory.mktemp("tiny-st")
    transformer = models.Transformer(str(base), max_seq_length=256)
    SentenceTransformer(modules=[transformer, models.Pooling(32)]).save(str(target))
    return str(target)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the session (as ``nobody`` when the tests run as root)."""
    import tempfile

    from deploy.engines import PostgresServer, postgres_binaries

    if postgres_binaries() is None:
        pytest.fail("PostgreSQL is not installed: run scripts/system-deps.sh (CI installs it)")
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="rag-pg-"))).start()
    yield server
    server.remove()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh empty database on the session's cluster, dropped afterwards."""
    from rag.db import close_pools

    url = postgres.fresh_database()
    yield url
    close_pools()
    postgres.drop_database(url)
