"""The row stores' database: SQLite files by default, one PostgreSQL database with a URL.

Every store (catalog, jobs, budgets, conversations) writes plain SQL with ``?`` placeholders
that both engines accept (``ON CONFLICT``, no engine-only functions), and calls ``read()`` or
``transaction()`` here; this module is the thin dialect layer between them and the driver:
psycopg 3 gets ``%s`` placeholders and PostgreSQL types in the schema (``DOUBLE PRECISION``
for times, ``BIGINT``, ``BYTEA``), rows answer by name and by position on both.

A store's write transaction is exclusive, as SQLite's ``BEGIN IMMEDIATE`` is: on PostgreSQL a
transaction-scoped advisory lock per store serialises writers across every process sharing
the database, so read-then-write logic (one job per content, one active version per name)
holds for many replicas without rewriting it; readers never wait. Hot paths that want row
locks instead (the job queue's ``FOR UPDATE SKIP LOCKED``) ask for ``exclusive=False``.

Schemas change only through numbered migrations (``Migration``), recorded per store in
``schema_migrations`` and applied at start-up or by ``rag migrate``.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import psycopg
import psycopg_pool

from rag.errors import ConfigurationError, DatabaseUnavailable
from rag.logs import redact
from rag.settings import Settings

__all__ = [
    "DATABASE_ERRORS",
    "Connection",
    "Cursor",
    "Database",
    "Migration",
    "PostgresDatabase",
    "Row",
    "SqliteDatabase",
    "Store",
    "connect",
    "database",
    "equal_to",
    "open_database",
]

DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
"""What a failing database raises, whichever engine it is."""


class Row(Protocol):
    """A result row: by column name (``row["id"]``) and by position (``row[0]``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Any: ...


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a store's SQL runs on inside ``read()`` or ``transaction()``."""

    def execute(self, sql: str, params: Any = (), /) -> Cursor: ...

    def executemany(self, sql: str, params: Any, /) -> Cursor: ...


@dataclass(frozen=True)
class Migration:
    """One numbered step of a store's schema; ``apply`` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[Connection, Database], None]


class Database(Protocol):
    """One engine's connections for one store: the extension point of the row stores."""

    dialect: str
    store: str

    def read(self) -> AbstractContextManager[Connection]: ...

    def transaction(self, exclusive: bool = True) -> AbstractContextManager[Connection]: ...

    def ddl(self, schema: str) -> str:
        """``schema`` (written in SQLite's types) in this engine's types."""
        ...

    def columns(self, conn: Connection, table: str) -> set[str]: ...

    def describe(self) -> str:
        """Where it is, for logs and errors (no password)."""
        ...

    def close(self) -> None: ...


# --- SQLite -------------------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    """A connection tuned for one writer and many readers (WAL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


class SqliteDatabase:
    """One SQLite file on one connection, shared by the threads of a process under one lock."""

    dialect = "sqlite"

    def __init__(self, path: Path, store: str = "") -> None:
        self.path = path
        self.store = store or path.stem
        self._conn = connect(path)
        self._lock = threading.RLock()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._lock:
            yield cast(Connection, self._conn)

    @contextmanager
    def transaction(self, exclusive: bool = True) -> Iterator[Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield cast(Connection, self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def ddl(self, schema: str) -> str:
        return schema

    def columns(self, conn: Connection, table: str) -> set[str]:
        return {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------

_DDL_TYPES = (
    (
        re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)


@functools.lru_cache(maxsize=4096)
def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` escaped)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Record(tuple[Any, ...]):
    """A PostgreSQL row that also answers by column name, as ``sqlite3.Row`` does."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@functools.lru_cache(maxsize=1024)
def _record_type(names: tuple[str, ...]) -> type[_Record]:
    """One row class per result shape, made once (not per query)."""
    index = {name: i for i, name in enumerate(names)}
    return type("Record", (_Record,), {"_index": index, "__slots__": ()})


def _record_factory(cursor: Any) -> Callable[[Sequence[Any]], _Record]:
    record_type = _record_type(tuple(column.name for column in cursor.description or ()))

    def make(values: Sequence[Any]) -> _Record:
        return record_type(values)

    return make


class _PgConnection:
    """A psycopg connection speaking the stores' ``?`` SQL."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = (), /) -> Cursor:
        cursor = self._conn.cursor(row_factory=_record_factory)
        if params:
            cursor.execute(_pg_sql(sql), tuple(params))
        else:  # without parameters psycopg sends the text as it is: no placeholders to translate
            cursor.execute(sql.encode())
        return cursor  # type: ignore[return-value]

    def executemany(self, sql: str, params: Any, /) -> Cursor:
        cursor = self._conn.cursor(row_factory=_record_factory)
        rows = [tuple(p) for p in params]
        if rows:
            cursor.executemany(_pg_sql(sql), rows)
        return cursor  # type: ignore[return-value]


_POOLS: dict[str, psycopg_pool.ConnectionPool[Any]] = {}
_POOLS_LOCK = threading.Lock()


def _pool(url: str, connect_timeout_s: float = 10.0) -> psycopg_pool.ConnectionPool[Any]:
    """One pool per URL per process, shared by every store on that database."""
    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is None or pool.closed:
            pool = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=10, open=False, timeout=30, name="rag"
            )
            try:
                pool.open(wait=True, timeout=connect_timeout_s)
            except psycopg_pool.PoolTimeout as exc:
                pool.close()
                raise DatabaseUnavailable(
                    f"RAG_DATABASE_URL: cannot connect to PostgreSQL at {redact(url)}"
                ) from exc
            _POOLS[url] = pool
        return pool


def close_pools() -> None:
    """Close every pool (tests, shutdown)."""
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return zlib.crc32(("rag:" + name).encode()) - 2**31


class PostgresDatabase:
    """One store's view of a PostgreSQL database (the pool is shared per URL)."""

    dialect = "postgresql"

    def __init__(self, url: str, store: str, *, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self.store = store
        self._pool = _pool(url, connect_timeout_s)
        self._key = _lock_key(store)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                yield _PgConnection(conn)
            finally:
                conn.autocommit = False

    @contextmanager
    def transaction(self, exclusive: bool = True) -> Iterator[Connection]:
        with self._pool.connection() as conn, conn.transaction():
            if exclusive:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
            yield _PgConnection(conn)

    def ddl(self, schema: str) -> str:
        for pattern, replacement in _DDL_TYPES:
            schema = pattern.sub(replacement, schema)
        return schema

    def columns(self, conn: Connection, table: str) -> set[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {row[0] for row in rows}

    def describe(self) -> str:
        return redact(self.url)

    def close(self) -> None:
        """The pool outlives a store: other stores of the process share it."""


def run_script(conn: Connection, script: str) -> None:
    """Each ``;``-separated statement of a schema script, in order (one engine-neutral way)."""
    for statement in (s.strip() for s in script.split(";")):
        if statement:
            conn.execute(statement)


# --- opening and migrating ----------------------------------------------------------------

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    store TEXT NOT NULL,
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    applied_at REAL NOT NULL,
    PRIMARY KEY (store, version)
)
"""


def open_database(
    store: str, *, url: str | None, data_dir: Path, connect_timeout_s: float = 10.0
) -> Database:
    """PostgreSQL when ``url`` is set (``RAG_DATABASE_URL``), else ``<data_dir>/<store>.sqlite3``."""
    if not url:
        return SqliteDatabase(data_dir / f"{store}.sqlite3", store)
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError("RAG_DATABASE_URL must be a postgresql:// URL (unset for SQLite)")
    return PostgresDatabase(url, store, connect_timeout_s=connect_timeout_s)


def database(settings: Settings, store: str) -> Database:
    """The database of one of the service's row stores, as the settings say."""
    return open_database(store, url=settings.database_url, data_dir=settings.data_dir)


def pending_migrations(db: Database, migrations: Sequence[Migration]) -> list[Migration]:
    with db.transaction() as conn:
        run_script(conn, db.ddl(_MIGRATIONS_TABLE))
    with db.read() as conn:
        done = {
            int(row[0])
            for row in conn.execute("SELECT version FROM schema_migrations WHERE store = ?", (db.store,))
        }
    return [m for m in migrations if m.version not in done]


def migrate(db: Database, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply the store's pending migrations in order, each in its own exclusive transaction."""
    applied = []
    for migration in sorted(pending_migrations(db, migrations), key=lambda m: m.version):
        with db.transaction() as conn:
            already = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE store = ? AND version = ?",
                (db.store, migration.version),
            ).fetchone()
            if already:  # another process applied it while we waited for the lock
                continue
            migration.apply(conn, db)
            conn.execute(
                "INSERT INTO schema_migrations (store, version, description, applied_at) VALUES (?,?,?,?)",
                (db.store, migration.version, migration.description, time.time()),
            )
        applied.append(migration)
    return applied


def create_tables(schema: str) -> Callable[[Connection, Database], None]:
    """A migration step that runs ``schema`` (``CREATE ... IF NOT EXISTS``) in the engine's types."""

    def apply(conn: Connection, db: Database) -> None:
        run_script(conn, db.ddl(schema))

    return apply


def add_missing_columns(
    table: str, columns: Sequence[tuple[str, str]]
) -> Callable[[Connection, Database], None]:
    """A migration step adding columns a table made by an earlier version lacks."""

    def apply(conn: Connection, db: Database) -> None:
        present = db.columns(conn, table)
        for name, sql_type in columns:
            if name not in present:
                conn.execute(db.ddl(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))

    return apply


class Store:
    """A schema on a database: the base of every row store.

    ``source`` is a ``Database`` or, for the embedded default and tests, a SQLite file path.
    """

    migrations: Sequence[Migration] = ()

    def __init__(self, source: Path | Database, *, migrate_now: bool = True) -> None:
        self.db = SqliteDatabase(source) if isinstance(source, Path) else source
        if migrate_now:
            migrate(self.db, self.migrations)
        else:
            waiting = pending_migrations(self.db, self.migrations)
            if waiting:
                raise ConfigurationError(
                    f"the {self.db.store} schema needs migration {waiting[0].version}"
                    f" ({waiting[0].description}); run `rag migrate`"
                )

    def read(self) -> AbstractContextManager[Connection]:
        return self.db.read()

    def transaction(self, exclusive: bool = True) -> AbstractContextManager[Connection]:
        return self.db.transaction(exclusive)

    def close(self) -> None:
        self.db.close()


def equal_to(**columns: object) -> tuple[str, list[object]]:
    """`` AND col = ?`` for each column given a value (None means: do not filter on it)."""
    given = {name: value for name, value in columns.items() if value is not None}
    return "".join(f" AND {name} = ?" for name in given), list(given.values())
