"""Golden-set candidates from users' feedback: what people marked up or down, ready for review.

An upvoted answer proposes its own text as the gold answer and its citations as the evidence; a
downvoted one keeps the question (and what was wrong, in ``review``) for a reviewer to answer.
Nothing here is a gold label until a person has checked it: each line carries a ``review``
object to read and then delete, after which the line is a ``GoldenRecord``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rag.citations import CITATION_MARKER
from rag.conversations import ConversationStore, Feedback, Rating
from rag.db import Database


def candidate(feedback: Feedback) -> dict[str, Any]:
    answer = feedback.answer.answer
    up = feedback.rating == "up"
    text = re.sub(
        r"\s+([.,;:!?])", r"\1", " ".join(CITATION_MARKER.sub(" ", str(answer.get("answer", ""))).split())
    )
    abstained = bool(answer.get("abstained"))
    evidence = [
        {"doc": c["document_name"], "page": (c.get("pages") or [None])[0], "text": c.get("snippet")}
        for c in answer.get("citations", [])
    ]
    return {
        "id": f"feedback-{feedback.id}",
        "question": feedback.answer.question,
        "answers": [text] if up and not abstained else [],
        "evidence": evidence if up else [],
        "answerable": not (up and abstained),
        "review": {
            "rating": feedback.rating,
            "comment": feedback.comment,
            "answer_id": feedback.answer_id,
            "retrieval_query": feedback.answer.retrieval_query,
            "answer": answer.get("answer"),
            "answer_type": answer.get("answer_type"),
            "citations": answer.get("citations", []),
            "at": feedback.created_at,
        },
    }


def export_feedback(store_path: Path | Database, out: Path, *, rating: Rating | None = None) -> int:
    """Write one candidate per feedback (every tenant's) to ``out`` (JSON lines); how many."""
    store = ConversationStore(store_path)
    try:
        rows = store.feedback(rating=rating)
    finally:
        store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(candidate(row), ensure_ascii=False) + "\n")
    return len(rows)


__all__ = ["candidate", "export_feedback"]
