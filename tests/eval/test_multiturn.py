"""The multi-turn set: enough real follow-ups, each referring back, and the file is what the builder makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.golden import GoldenSet
from eval.multiturn import (
    DEFAULT_PATH,
    Entity,
    MultiTurnSet,
    SourceName,
    build_multiturn,
    dumps,
    load_multiturn,
    source_sets,
    with_pronoun,
)
from rag.followups import refers_back


@pytest.fixture(scope="module")
def sources(datasets: Path) -> dict[SourceName, GoldenSet]:
    return source_sets(datasets)


@pytest.fixture(scope="module")
def built(sources: dict[SourceName, GoldenSet]) -> MultiTurnSet:
    return build_multiturn(sources)


def test_the_set_on_disk_is_what_the_builder_makes(built: MultiTurnSet) -> None:
    assert DEFAULT_PATH.read_text(encoding="utf-8") == dumps(built), "rebuild: python -m eval.multiturn"
    assert load_multiturn() == built


def test_enough_conversations_of_both_sources_and_every_shape(built: MultiTurnSet) -> None:
    conversations = built.conversations
    assert len(conversations) >= 40
    assert len({c.id for c in conversations}) == len(conversations)
    assert {c.source for c in conversations} == {"squad2", "financebench"}
    assert {c.shape for c in conversations} == {"pronoun", "possessive", "entity-swap"}


def test_every_follow_up_refers_back_and_stands_for_its_question(
    built: MultiTurnSet, sources: dict[SourceName, GoldenSet]
) -> None:
    for c in built.conversations:
        assert refers_back(c.followup), c.followup
        assert refers_back(c.standalone) is None, c.standalone
        assert c.followup != c.standalone and c.turns and c.turns[0].question != c.standalone
        assert c.entity.lower() not in c.followup.lower() or c.shape == "entity-swap"
        golden = sources[c.source]
        documents = {d.id for d in golden.documents}
        assert set(c.evidence) <= documents
        record = next(r for r in golden.records if r.id == c.record)
        assert set(c.evidence) == {ev.doc for ev in record.evidence}


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When were the Normans in Normandy?", ("When were they in Normandy?", "pronoun")),
        ("Who was the Normans' main enemy in Italy?", ("Who was their main enemy in Italy?", "possessive")),
        ("What did the Franks do to the Normans?", ("What did the Franks do to them?", "pronoun")),
        ("Where did the Normans and Byzantines sign the treaty?", None),  # coordination
        ("What did the Normans call their land?", None),  # a "their" already: which would be which?
        ("Which Norman Normans fought there, and where did the Normans settle?", None),  # after a break
    ],
)
def test_a_name_becomes_a_pronoun_only_where_that_stays_clear(
    question: str, expected: tuple[str, str] | None
) -> None:
    assert with_pronoun(question, Entity(aliases=("Normans",), plural=True)) == expected


def test_a_modifier_or_a_longer_name_is_left_alone() -> None:
    warsaw = Entity(aliases=("Warsaw",))
    assert with_pronoun("When did the Warsaw Uprising begin?", warsaw) is None
    assert with_pronoun("Where is the Warsaw stadium located?", warsaw) is None
    assert with_pronoun("On what river does Warsaw stand?", warsaw) == (
        "On what river does it stand?",
        "pronoun",
    )
