"""The row stores' database contract, run by both engines: SQLite files and a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.db import (
    Database,
    Migration,
    PostgresDatabase,
    SqliteDatabase,
    Store,
    add_missing_columns,
    create_tables,
    migrate,
    open_database,
)
from rag.errors import ConfigurationError, DatabaseUnavailable
from tests.conftest import free_port

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    at REAL NOT NULL,
    body BLOB,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)
"""

MIGRATIONS = (Migration(1, "items and counters", create_tables(SCHEMA)),)


class Items(Store):
    migrations = MIGRATIONS


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database: Database = SqliteDatabase(tmp_path / "items.sqlite3", "items")
    else:
        database = PostgresDatabase(request.getfixturevalue("pg_url"), "items")
    yield database
    database.close()


def test_rows_answer_by_name_and_position_with_exact_values(db: Database) -> None:
    store = Items(db)
    now = time.time()
    body = bytes(range(256)) * 10
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO items (id, size, at, body, note) VALUES (?,?,?,?,?)",
            ("a", 5_000_000_000, now, body, "100% sure? yes"),
        )
    with store.read() as conn:
        row = conn.execute("SELECT id, size, at, body, note FROM items WHERE id = ?", ("a",)).fetchone()
        missing = conn.execute("SELECT * FROM items WHERE id = ?", ("zz",)).fetchone()
    assert row["id"] == row[0] == "a"
    assert row["size"] == 5_000_000_000  # BIGINT on PostgreSQL
    assert row["at"] == now  # DOUBLE PRECISION: no second lost to a 4-byte REAL
    assert bytes(row["body"]) == body
    assert row["note"] == "100% sure? yes"  # a literal % and ? in a value are data, not placeholders
    assert set(row.keys()) >= {"id", "size", "at", "body", "note"}
    assert missing is None


def test_upsert_rowcount_and_executemany(db: Database) -> None:
    store = Items(db)
    with store.transaction() as conn:
        conn.executemany("INSERT INTO counters (name, value) VALUES (?, ?)", [("x", 1), ("y", 2)])
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1)"
            " ON CONFLICT(name) DO UPDATE SET value = counters.value + 1",
            ("x",),
        )
        changed = conn.execute("UPDATE counters SET value = value * 10 WHERE value >= ?", (2,)).rowcount
        conn.executemany("DELETE FROM counters WHERE name = ?", [])  # nothing to do is fine
    with store.read() as conn:
        rows = conn.execute("SELECT name, value FROM counters ORDER BY name").fetchall()
    assert changed == 2
    assert [(r["name"], r["value"]) for r in rows] == [("x", 20), ("y", 20)]


def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    store = Items(db)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO counters (name, value) VALUES (?, ?)", ("gone", 1))
        raise RuntimeError("boom")
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM counters").fetchone()[0] == 0


def test_exclusive_transactions_serialise_read_then_write(db: Database) -> None:
    """Two writers doing read-modify-write never lose an update (SQLite's BEGIN IMMEDIATE, or the
    advisory lock on PostgreSQL, which also holds across processes)."""
    store = Items(db)
    with store.transaction() as conn:
        conn.execute("INSERT INTO counters (name, value) VALUES (?, 0)", ("n",))

    def bump(times: int) -> None:
        for _ in range(times):
            with store.transaction() as conn:
                value = conn.execute("SELECT value FROM counters WHERE name = ?", ("n",)).fetchone()[0]
                time.sleep(0.001)
                conn.execute("UPDATE counters SET value = ? WHERE name = ?", (value + 1, "n"))

    threads = [threading.Thread(target=bump, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.read() as conn:
        assert conn.execute("SELECT value FROM counters WHERE name = ?", ("n",)).fetchone()[0] == 100


def test_migrations_apply_once_in_order_and_add_columns(db: Database) -> None:
    calls: list[int] = []

    def note(version: int) -> Migration:
        return Migration(version, f"step {version}", lambda conn, database: calls.append(version))

    steps = (
        *MIGRATIONS,
        note(3),
        note(2),
        Migration(4, "a column", add_missing_columns("items", [("extra", "REAL")])),
    )
    assert [m.version for m in migrate(db, steps)] == [1, 2, 3, 4]
    assert calls == [2, 3]
    assert migrate(db, steps) == []  # applied once
    with db.read() as conn:
        assert "extra" in db.columns(conn, "items")
        recorded = conn.execute(
            "SELECT version, description FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert [(r[0], r[1]) for r in recorded] == [
        (1, "items and counters"),
        (2, "step 2"),
        (3, "step 3"),
        (4, "a column"),
    ]


def test_concurrent_migrations_run_each_step_once(db: Database) -> None:
    """Replicas starting together: each step runs in exactly one of them."""
    calls: list[int] = []
    step = Migration(2, "slow", lambda conn, database: (calls.append(2), time.sleep(0.2)))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(db, (*MIGRATIONS, step))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and calls == [2]


def test_a_store_with_pending_migrations_refuses_to_start_without_migrating(db: Database) -> None:
    with pytest.raises(ConfigurationError, match="rag migrate"):
        Items(db, migrate_now=False)
    Items(db)  # migrating at start-up (the default)
    Items(db, migrate_now=False)  # nothing pending now


def test_database_urls_are_checked(tmp_path: Path) -> None:
    assert isinstance(open_database("catalog", url=None, data_dir=tmp_path), SqliteDatabase)
    with pytest.raises(ConfigurationError, match="RAG_DATABASE_URL"):
        open_database("catalog", url="mysql://x@y/z", data_dir=tmp_path)
    port = free_port()  # nothing listens there
    with pytest.raises(DatabaseUnavailable) as caught:
        open_database(
            "catalog",
            url=f"postgresql://rag:secret@127.0.0.1:{port}/db",
            data_dir=tmp_path,
            connect_timeout_s=1,
        )
    assert "secret" not in str(caught.value)


def test_rag_migrate_brings_postgresql_up_to_date_for_services_that_may_not_migrate(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main
    from rag.catalog import Catalog
    from rag.db import database
    from rag.settings import load_settings

    monkeypatch.setenv("RAG_DATABASE_URL", pg_url)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RAG_MIGRATE_ON_START", "false")
    settings = load_settings()
    assert main(["migrate", "--check"]) == 1
    with pytest.raises(ConfigurationError, match="rag migrate"):
        Catalog(database(settings, "catalog"), migrate_now=settings.migrate_on_start)
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "jobs: applied: 1 (jobs), 2 (intake's facts on each job)" in out and "PostgreSQL" in out
    assert main(["migrate", "--check"]) == 0
    Catalog(database(settings, "catalog"), migrate_now=False).close()
    assert not any((tmp_path / "var").glob("*.sqlite3"))
