"""``rag eval --from-feedback``: answers people marked up or down become golden-set candidates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from eval.golden import GoldenRecord
from rag.conversations import ConversationStore

CITATION = {
    "n": 1,
    "document_id": "d1",
    "document_name": "lighthouses.pdf",
    "pages": [2],
    "snippet": "Augustin Fresnel presented a new kind of lens in 1822.",
    "chunk_id": "d1:000003",
    "char_start": 10,
    "char_end": 64,
}


def _answer(text: str, citations: list[dict[str, object]], abstained: bool = False) -> dict[str, object]:
    return {
        "answer": text,
        "abstained": abstained,
        "answer_type": "abstained" if abstained else "answer",
        "citations": citations,
    }


def test_up_and_down_votes_are_exported_for_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "var"
    store = ConversationStore(data / "conversations.sqlite3")
    store.add_answer(
        "alpha",
        "ans_up",
        conversation_id=None,
        surface="query",
        question="Who made the lens?",
        retrieval_query="Who made the lens?",
        answer=_answer("Augustin Fresnel [1].", [CITATION]),
    )
    store.add_answer(
        "beta",
        "ans_down",
        conversation_id=None,
        surface="chat",
        question="When was it lit?",
        retrieval_query="When was the lighthouse lit?",
        answer=_answer("In 1900 [1].", [CITATION]),
    )
    assert store.add_feedback("alpha", "ans_up", "up", "right") is not None
    assert store.add_feedback("alpha", "ans_down", "down", "") is None  # not alpha's answer
    assert store.add_feedback("beta", "ans_down", "down", "wrong year") is not None
    store.close()

    out = tmp_path / "candidates.jsonl"
    assert main(["--data-dir", str(data), "eval", "--from-feedback", str(out)]) == 0
    assert "2 golden-set candidate(s)" in capsys.readouterr().out
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    up, down = lines
    assert up["answers"] == ["Augustin Fresnel."]
    assert up["evidence"] == [{"doc": "lighthouses.pdf", "page": 2, "text": CITATION["snippet"]}]
    assert down["answers"] == [] and down["review"]["comment"] == "wrong year"
    assert down["review"]["retrieval_query"] == "When was the lighthouse lit?"
    for line in lines:  # once reviewed (the review object deleted) each is a golden record
        line.pop("review")
        GoldenRecord.model_validate(line)

    only_down = tmp_path / "down.jsonl"
    assert main(["--data-dir", str(data), "eval", "--from-feedback", str(only_down), "--rating", "down"]) == 0
    assert len(only_down.read_text().splitlines()) == 1


def test_no_feedback_yet_is_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--data-dir", str(tmp_path / "var"), "eval", "--from-feedback", str(tmp_path / "o.jsonl")]) == 1
    )
    err = capsys.readouterr().err
    assert "no feedback yet" in err and "Traceback" not in err
