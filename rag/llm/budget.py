"""Daily spending budgets, global and per API key, kept in the database so a restart does not reset them.

A call first *reserves* its worst case (prompt estimate plus ``max_tokens``) inside one exclusive
transaction (SQLite's ``BEGIN IMMEDIATE``, or PostgreSQL's advisory lock for this store), so
concurrent requests, processes and replicas cannot all see the same headroom; after the call the
reservation is replaced by what was actually spent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.db import Connection, Database, Migration, Store, create_tables

GLOBAL_SCOPE = "*"
_RESERVATION_TTL_S = 600.0  # a crashed process's reservations stop counting after this

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_spend (
    day TEXT NOT NULL, scope TEXT NOT NULL, spent_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day, scope)
);
CREATE TABLE IF NOT EXISTS budget_reservations (
    id TEXT NOT NULL, day TEXT NOT NULL, scope TEXT NOT NULL, amount_usd REAL NOT NULL,
    expires REAL NOT NULL, PRIMARY KEY (id, scope)
);
"""


@dataclass
class Reservation:
    id: str
    day: str
    scopes: list[str] = field(default_factory=list)
    amount: float = 0.0


def key_scope(api_key_id: str) -> str:
    return f"key:{api_key_id}"


MIGRATIONS = (Migration(1, "spend and reservations", create_tables(_SCHEMA)),)


class _BudgetStore(Store):
    migrations = MIGRATIONS


class BudgetLedger:
    def __init__(
        self,
        source: Path | Database,
        *,
        daily_usd: float | None,
        per_key_daily_usd: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.daily_usd = daily_usd
        self.per_key_daily_usd = per_key_daily_usd
        self._clock = clock
        self._store = _BudgetStore(source) if self.enabled else None

    @property
    def enabled(self) -> bool:
        return self.daily_usd is not None or self.per_key_daily_usd is not None

    def _day(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self._clock()))

    def _limits(self, api_key_id: str | None) -> list[tuple[str, float]]:
        limits: list[tuple[str, float]] = []
        if self.daily_usd is not None:
            limits.append((GLOBAL_SCOPE, self.daily_usd))
        if self.per_key_daily_usd is not None and api_key_id:
            limits.append((key_scope(api_key_id), self.per_key_daily_usd))
        return limits

    def _committed(self, db: Connection, day: str, scope: str, now: float) -> float:
        spent = db.execute(
            "SELECT spent_usd FROM budget_spend WHERE day = ? AND scope = ?", (day, scope)
        ).fetchone()
        held = db.execute(
            "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations "
            "WHERE day = ? AND scope = ? AND expires > ?",
            (day, scope, now),
        ).fetchone()
        return float(spent[0] if spent else 0.0) + float(held[0])

    def reserve(self, amount: float, api_key_id: str | None = None) -> Reservation | None:
        """Hold ``amount`` against every applicable budget, or return None when one would be exceeded."""
        day = self._day()
        limits = self._limits(api_key_id)
        if self._store is None or amount <= 0 or not limits:
            return Reservation(id="", day=day)
        now = self._clock()
        reservation = Reservation(id=uuid.uuid4().hex, day=day, amount=amount)
        with self._store.transaction() as db:
            db.execute("DELETE FROM budget_reservations WHERE expires <= ?", (now,))
            for scope, limit in limits:
                if self._committed(db, day, scope, now) + amount > limit + 1e-12:
                    return None
            for scope, _ in limits:
                db.execute(
                    "INSERT INTO budget_reservations VALUES (?, ?, ?, ?, ?)",
                    (reservation.id, day, scope, amount, now + _RESERVATION_TTL_S),
                )
                reservation.scopes.append(scope)
        return reservation

    def settle(self, reservation: Reservation, actual: float) -> None:
        """Replace the held amount by what the call really cost (0 for a failed call); once only."""
        if self._store is None or not reservation.id:
            return
        with self._store.transaction() as db:
            db.execute("DELETE FROM budget_reservations WHERE id = ?", (reservation.id,))
            if actual > 0:
                for scope in reservation.scopes:
                    db.execute(
                        "INSERT INTO budget_spend (day, scope, spent_usd) VALUES (?, ?, ?) ON CONFLICT "
                        "(day, scope) DO UPDATE SET spent_usd = budget_spend.spent_usd + excluded.spent_usd",
                        (reservation.day, scope, actual),
                    )
        reservation.id = ""

    def spent_today(self, api_key_id: str | None = None) -> float:
        """Settled spend today, globally or for one key."""
        if self._store is None:
            return 0.0
        scope = key_scope(api_key_id) if api_key_id else GLOBAL_SCOPE
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT spent_usd FROM budget_spend WHERE day = ? AND scope = ?", (self._day(), scope)
            ).fetchone()
        return float(row[0]) if row else 0.0

    def held(self) -> float:
        """What open reservations hold right now, all scopes together (0 when every call settled)."""
        if self._store is None:
            return 0.0
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations WHERE expires > ?",
                (self._clock(),),
            ).fetchone()
        return float(row[0])

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
