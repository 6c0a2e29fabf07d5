"""Conversations, the answers given in them, and the feedback on those answers.

Every answer the service gives is stored whole (its JSON, citations included) so history,
feedback and the golden-set export show exactly what the caller saw. Rows carry the tenant and
every read filters on it: another tenant's ids are simply not found. SQLite under the data
directory, like the catalog (``rag.db``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rag.db import Database, Migration, Row, Store, create_tables

Rating = Literal["up", "down"]
TITLE_CHARS = 80

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    collection TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_tenant ON conversations(tenant, updated_at);
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    conversation_id TEXT,
    surface TEXT NOT NULL,
    question TEXT NOT NULL,
    retrieval_query TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_conversation ON answers(conversation_id, created_at);
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    answer_id TEXT NOT NULL,
    rating TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_answer ON feedback(answer_id);
"""


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    tenant: str
    collection: str
    title: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    id: str
    conversation_id: str | None
    surface: str
    question: str
    retrieval_query: str
    answer: dict[str, Any]
    """The answer object exactly as it was returned."""
    created_at: float


@dataclass(frozen=True, slots=True)
class Feedback:
    id: str
    answer_id: str
    rating: Rating
    comment: str
    created_at: float
    answer: StoredAnswer


def _conversation(row: Row) -> Conversation:
    return Conversation(
        row["id"], row["tenant"], row["collection"], row["title"], row["created_at"], row["updated_at"]
    )


def _answer(row: Row) -> StoredAnswer:
    return StoredAnswer(
        id=row["id"],
        conversation_id=row["conversation_id"],
        surface=row["surface"],
        question=row["question"],
        retrieval_query=row["retrieval_query"],
        answer=json.loads(row["answer"]),
        created_at=row["created_at"],
    )


MIGRATIONS = (Migration(1, "conversations, answers, feedback", create_tables(_SCHEMA)),)


class _Tables(Store):
    migrations = MIGRATIONS


class ConversationStore:
    def __init__(self, source: Path | Database) -> None:
        self._db = _Tables(source)

    def close(self) -> None:
        self._db.close()

    # --- conversations ---------------------------------------------------------------

    def create(self, tenant: str, collection: str, title: str) -> Conversation:
        now = time.time()
        conversation = Conversation(new_id("conv"), tenant, collection, title, now, now)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                (conversation.id, tenant, collection, title, now, now),
            )
        return conversation

    def get(self, tenant: str, conversation_id: str) -> Conversation | None:
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT * FROM conversations WHERE id = ? AND tenant = ?", (conversation_id, tenant)
            ).fetchone()
        return _conversation(row) if row else None

    def owned(self, tenant: str, *, limit: int, offset: int = 0) -> tuple[list[Conversation], int]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM conversations WHERE tenant = ? ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
                (tenant, limit, offset),
            ).fetchall()
            total = conn.execute("SELECT COUNT(*) FROM conversations WHERE tenant = ?", (tenant,)).fetchone()
        return [_conversation(r) for r in rows], int(total[0])

    def delete(self, tenant: str, conversation_id: str) -> bool:
        """The conversation, its answers and their feedback; ``False`` when it is not the tenant's."""
        with self._db.transaction() as conn:
            gone = conn.execute(
                "DELETE FROM conversations WHERE id = ? AND tenant = ?", (conversation_id, tenant)
            ).rowcount
            if gone:
                conn.execute(
                    "DELETE FROM feedback WHERE answer_id IN "
                    "(SELECT id FROM answers WHERE conversation_id = ? AND tenant = ?)",
                    (conversation_id, tenant),
                )
                conn.execute(
                    "DELETE FROM answers WHERE conversation_id = ? AND tenant = ?", (conversation_id, tenant)
                )
        return bool(gone)

    # --- answers ------------------------------------------------------------------------

    def add_answer(
        self,
        tenant: str,
        answer_id: str,
        *,
        conversation_id: str | None,
        surface: str,
        question: str,
        retrieval_query: str,
        answer: dict[str, Any],
    ) -> StoredAnswer:
        now = time.time()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    tenant,
                    conversation_id,
                    surface,
                    question,
                    retrieval_query,
                    json.dumps(answer),
                    now,
                ),
            )
            if conversation_id is not None:  # an untitled conversation takes its first question
                conn.execute(
                    "UPDATE conversations SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END"
                    " WHERE id = ? AND tenant = ?",
                    (now, " ".join(question.split())[:TITLE_CHARS], conversation_id, tenant),
                )
        return StoredAnswer(answer_id, conversation_id, surface, question, retrieval_query, answer, now)

    def answer(self, tenant: str, answer_id: str) -> StoredAnswer | None:
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT * FROM answers WHERE id = ? AND tenant = ?", (answer_id, tenant)
            ).fetchone()
        return _answer(row) if row else None

    def turns(self, tenant: str, conversation_id: str, *, last: int | None = None) -> list[StoredAnswer]:
        """The conversation's answers, oldest first (only the ``last`` few when given)."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM answers WHERE conversation_id = ? AND tenant = ? ORDER BY created_at DESC, id DESC"
                + (" LIMIT ?" if last is not None else ""),
                (conversation_id, tenant, *([last] if last is not None else [])),
            ).fetchall()
        return [_answer(r) for r in reversed(rows)]

    # --- feedback -----------------------------------------------------------------------

    def add_feedback(self, tenant: str, answer_id: str, rating: Rating, comment: str) -> str | None:
        """The feedback's id; ``None`` when the answer is not the tenant's."""
        feedback_id = new_id("fb")
        with self._db.transaction() as conn:
            owned = conn.execute(
                "SELECT 1 FROM answers WHERE id = ? AND tenant = ?", (answer_id, tenant)
            ).fetchone()
            if not owned:
                return None
            conn.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?)",
                (feedback_id, tenant, answer_id, rating, comment, time.time()),
            )
        return feedback_id

    def feedback(self, *, tenant: str | None = None, rating: Rating | None = None) -> list[Feedback]:
        """Feedback with the answer it is about, oldest first (every tenant's when ``tenant`` is None)."""
        where, args = "", []
        for column, value in (("f.tenant", tenant), ("f.rating", rating)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT f.id AS fid, f.rating, f.comment, f.created_at AS fat, a.* FROM feedback f "
                "JOIN answers a ON a.id = f.answer_id AND a.tenant = f.tenant WHERE 1 = 1"
                + where
                + " ORDER BY f.created_at, f.id",
                args,
            ).fetchall()
        return [Feedback(r["fid"], r["id"], r["rating"], r["comment"], r["fat"], _answer(r)) for r in rows]


__all__ = ["Conversation", "ConversationStore", "Feedback", "Rating", "StoredAnswer", "new_id"]
