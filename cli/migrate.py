"""``rag migrate``: bring every row store's schema up to date (SQLite files or PostgreSQL)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cli.common import EXIT_FAILED, EXIT_OK, Subparsers, add_command, print_json
from rag.db import Migration, database, migrate, pending_migrations
from rag.settings import Settings


def schemas() -> dict[str, Sequence[Migration]]:
    """Every store the service keeps rows in, by its database name, with its migrations."""
    from ingest.jobs import JobStore
    from rag import conversations
    from rag.catalog import Catalog
    from rag.llm import budget

    return {
        "catalog": Catalog.migrations,
        "jobs": JobStore.migrations,
        "conversations": conversations.MIGRATIONS,
        "llm_budget": budget.MIGRATIONS,
    }


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    report: dict[str, list[dict[str, object]]] = {}
    for store, migrations in schemas().items():
        db = database(settings, store)
        try:
            steps = pending_migrations(db, migrations) if args.check else migrate(db, migrations)
        finally:
            db.close()
        report[store] = [{"version": m.version, "description": m.description} for m in steps]
    where = "PostgreSQL" if settings.database_url else f"SQLite under {settings.data_dir}"
    if args.json:
        print_json({"database": where, "pending" if args.check else "applied": report})
    else:
        verb = "pending" if args.check else "applied"
        for store, listed in report.items():
            done = ", ".join(f"{s['version']} ({s['description']})" for s in listed) or "none"
            print(f"{store}: {verb}: {done}")
        print(f"database: {where}")
    if args.check and any(report.values()):
        return EXIT_FAILED
    return EXIT_OK


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "migrate",
        cmd_migrate,
        help="apply pending schema migrations to every store (RAG_DATABASE_URL, else SQLite files)",
    )
    p.add_argument("--check", action="store_true", help="apply nothing; exit 1 when a migration is pending")
    p.add_argument("--json", action="store_true", help="print JSON")
