"""The API's core flows on PostgreSQL: the same tests as ``test_flow`` and ``test_conversations``,
against a real server whose catalog, job queue, budgets and conversations live in a real
PostgreSQL database (``RAG_DATABASE_URL``) instead of SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from deploy.engines import PostgresServer
from tests.api import conftest as api
from tests.api.test_conversations import *  # noqa: F403 - the same tests, on this module's server
from tests.api.test_flow import *  # noqa: F403

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_database(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.fresh_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pg_database: str) -> Iterator[api.LiveServer]:
    root = tmp_path_factory.mktemp("live-pg")
    server = api.LiveServer(
        root / "var",
        {
            "RAG_API_KEYS": api.KEYS,
            "RAG_ADMIN_KEY": api.ADMIN_KEY,
            "RAG_RATE_LIMIT_PER_MINUTE": "100000",
            "RAG_SAMPLES_DIR": str(api.SAMPLES),
            "RAG_DATABASE_URL": pg_database,
        },
        name="live-pg",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def samples_indexed(live: api.LiveServer) -> dict[str, dict[str, Any]]:
    return api.wait_for_samples(live)


def test_the_rows_are_in_postgresql_not_in_sqlite_files(
    live: api.LiveServer, samples_indexed: dict, pg_database: str
) -> None:
    assert not any(Path(live.data_dir).glob("*.sqlite3")) or {
        p.name for p in Path(live.data_dir).glob("*.sqlite3")
    } <= {"llm_cache.sqlite3"}, "only the process-local response cache stays a file"
    with psycopg.connect(pg_database) as conn:
        active = conn.execute("SELECT COUNT(*) FROM documents WHERE state = 'active'").fetchone()
        jobs = conn.execute("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'").fetchone()
        stores = {r[0] for r in conn.execute("SELECT store FROM schema_migrations")}
    assert active is not None and active[0] >= len(samples_indexed)
    assert jobs is not None and jobs[0] >= len(samples_indexed)
    assert stores >= {"catalog", "jobs", "conversations"}
