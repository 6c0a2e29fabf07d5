from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.errors import InvalidRequest
from rag.fusion import FusedHit, fuse, reciprocal_rank_fusion, weighted_fusion
from rag.types import Hit

IDS = [f"d{i % 4}:{i:06d}" for i in range(30)]


def ranking(ids: list[str], scores: list[float]) -> list[Hit]:
    ordered = sorted(scores, reverse=True)
    return [
        Hit(cid, cid.split(":")[0], s, rank)
        for rank, (cid, s) in enumerate(zip(ids, ordered, strict=False), start=1)
    ]


@st.composite
def rankings(draw: st.DrawFn, min_size: int = 0) -> list[Hit]:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=min_size, max_size=15, unique=True))
    scores = draw(
        st.lists(
            st.floats(-50, 50, allow_nan=False, width=32), min_size=len(ids), max_size=len(ids), unique=True
        )
    )
    return ranking(ids, scores)


def swapped(hits: list[FusedHit]) -> list[tuple[object, ...]]:
    return [(h.chunk_id, h.fused, h.lexical_rank, h.dense_rank, h.lexical, h.dense) for h in hits]


def as_tuples(hits: list[FusedHit]) -> list[tuple[object, ...]]:
    return [(h.chunk_id, h.fused, h.dense_rank, h.lexical_rank, h.dense, h.lexical) for h in hits]


METHODS = [("rrf", 60), ("weighted", 0.5)]


@settings(max_examples=150, deadline=None)
@given(dense=rankings(min_size=1), lexical=rankings(min_size=1), method=st.sampled_from(["rrf", "weighted"]))
def test_a_chunk_first_in_both_lists_is_first(dense: list[Hit], lexical: list[Hit], method: str) -> None:
    top = dense[0].chunk_id
    # move the dense winner to the top of the lexical list, keeping the rest as drawn
    rest = [h for h in lexical if h.chunk_id != top]
    scores = sorted([h.score for h in lexical] + [max(h.score for h in lexical) + 1.0], reverse=True)
    lexical = ranking([top] + [h.chunk_id for h in rest], scores[: len(rest) + 1])
    fused = fuse(dense, lexical, method)  # type: ignore[arg-type]
    assert fused[0].chunk_id == top
    assert fused[0].dense_rank == 1 and fused[0].lexical_rank == 1


@settings(max_examples=150, deadline=None)
@given(
    dense=rankings(), lexical=rankings(), method=st.sampled_from(["rrf", "weighted"]), seed=st.integers(0, 9)
)
def test_result_does_not_depend_on_the_order_of_the_inputs(
    dense: list[Hit], lexical: list[Hit], method: str, seed: int
) -> None:
    forward = fuse(dense, lexical, method)  # type: ignore[arg-type]
    backward = fuse(lexical, dense, method)  # type: ignore[arg-type]
    assert as_tuples(forward) == swapped(backward)
    # the hits carry their ranks: the order they are handed over in must not matter either
    shuffled_dense, shuffled_lexical = list(dense), list(lexical)
    random.Random(seed).shuffle(shuffled_dense)
    random.Random(seed + 1).shuffle(shuffled_lexical)
    assert as_tuples(fuse(shuffled_dense, shuffled_lexical, method)) == as_tuples(forward)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(dense=rankings(), lexical=rankings())
def test_every_chunk_appears_once_with_what_each_side_said(dense: list[Hit], lexical: list[Hit]) -> None:
    fused = reciprocal_rank_fusion(dense, lexical, k=60)
    assert sorted(h.chunk_id for h in fused) == sorted({h.chunk_id for h in dense + lexical})
    by_dense = {h.chunk_id: h for h in dense}
    by_lexical = {h.chunk_id: h for h in lexical}
    for h in fused:
        d, lx = by_dense.get(h.chunk_id), by_lexical.get(h.chunk_id)
        assert h.dense_rank == (d.rank if d else None) and h.dense == (d.score if d else None)
        assert h.lexical_rank == (lx.rank if lx else None) and h.lexical == (lx.score if lx else None)
        expected = (1 / (60 + d.rank) if d else 0.0) + (1 / (60 + lx.rank) if lx else 0.0)
        assert h.fused == pytest.approx(expected)
    assert [h.fused for h in fused] == sorted((h.fused for h in fused), reverse=True)


def test_rrf_prefers_agreement_and_breaks_ties_by_rank_then_id() -> None:
    dense = ranking(["a:1", "b:1", "c:1"], [0.9, 0.8, 0.7])
    lexical = ranking(["c:1", "b:1", "a:1"], [12.0, 11.0, 3.0])
    fused = reciprocal_rank_fusion(dense, lexical)
    # a and c tie exactly (ranks 1+3 vs 3+1) and b has 2+2: RRF gives b slightly less than a and c
    assert fused[0].fused == fused[1].fused > fused[2].fused
    assert [h.chunk_id for h in fused] == ["a:1", "c:1", "b:1"]


def test_weighted_fusion_normalises_each_side_and_honours_the_weight() -> None:
    dense = ranking(["a:1", "b:1"], [0.9, 0.5])
    lexical = ranking(["b:1", "c:1"], [30.0, 10.0])
    dense_heavy = weighted_fusion(dense, lexical, dense_weight=0.9)
    lexical_heavy = weighted_fusion(dense, lexical, dense_weight=0.1)
    by_id = {h.chunk_id: h.fused for h in dense_heavy}
    assert by_id == pytest.approx({"a:1": 0.9, "b:1": 0.1, "c:1": 0.0})
    assert dense_heavy[0].chunk_id == "a:1"
    assert lexical_heavy[0].chunk_id == "b:1"


def test_duplicate_hits_keep_the_best_rank() -> None:
    dense = [Hit("a:1", "a", 0.9, 1), Hit("b:1", "b", 0.8, 2), Hit("a:1", "a", 0.1, 3)]
    fused = reciprocal_rank_fusion(dense, [])
    assert [(h.chunk_id, h.dense_rank) for h in fused] == [("a:1", 1), ("b:1", 2)]


def test_bad_parameters_are_clear_errors() -> None:
    with pytest.raises(InvalidRequest):
        weighted_fusion([], [], dense_weight=1.5)
    with pytest.raises(InvalidRequest):
        reciprocal_rank_fusion([], [], k=-1)
    with pytest.raises(InvalidRequest):
        fuse([], [], "borda")  # type: ignore[arg-type]


def test_spreading_pages_moves_a_pages_extra_chunks_behind_the_others_in_order() -> None:
    from rag.fusion import FusedHit
    from rag.retrieval import Ranked, spread_pages
    from rag.types import Chunk, StoredChunk

    def ranked(n: int, doc: str, page: int) -> Ranked:
        chunk = Chunk(f"{doc}:{n:06d}", doc, n, "text", page, page, 0, 4, 1)
        return Ranked(FusedHit(chunk.id, doc, 1.0 - n / 100), StoredChunk(chunk, doc, "c", "sha"))

    order = [ranked(0, "a", 5), ranked(1, "a", 5), ranked(2, "a", 5), ranked(3, "a", 6), ranked(4, "b", 5)]
    assert [r.stored.chunk.ordinal for r in spread_pages(order, 1)] == [0, 3, 4, 1, 2]
    assert [r.stored.chunk.ordinal for r in spread_pages(order, 2)] == [0, 1, 3, 4, 2]
    assert spread_pages([], 1) == []
