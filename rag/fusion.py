"""Fuse a dense and a lexical ranking into one, keeping what each side said.

Both methods are symmetric in their inputs and break ties the same way (fused score, then
the sum of ranks, then chunk id) so a query always returns the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rag.errors import InvalidRequest
from rag.types import Hit

FusionMethod = Literal["rrf", "weighted"]


@dataclass(frozen=True, slots=True)
class FusedHit:
    """One fused candidate; ranks are 1-based and ``None`` where that retriever missed it."""

    chunk_id: str
    doc_id: str
    fused: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense: float | None = None
    lexical: float | None = None


def _normalise_ranks(hits: Sequence[Hit]) -> list[Hit]:
    """Best first, one hit per chunk, ranks 1..n: callers may hand us duplicates or gaps."""
    ordered = sorted(hits, key=lambda h: (h.rank, -h.score, h.chunk_id))
    seen: set[str] = set()
    out: list[Hit] = []
    for hit in ordered:
        if hit.chunk_id in seen:
            continue
        seen.add(hit.chunk_id)
        out.append(Hit(hit.chunk_id, hit.doc_id, hit.score, len(out) + 1))
    return out


def _sort(fused: list[FusedHit]) -> list[FusedHit]:
    # a missing rank counts as one past the end so "found by both" wins a tie
    miss = len(fused) + 1

    def key(h: FusedHit) -> tuple[float, int, str]:
        return (-h.fused, (h.dense_rank or miss) + (h.lexical_rank or miss), h.chunk_id)

    return sorted(fused, key=key)


def _merge(
    dense: list[Hit], lexical: list[Hit], dense_value: dict[str, float], lexical_value: dict[str, float]
) -> list[FusedHit]:
    by_dense = {h.chunk_id: h for h in dense}
    by_lexical = {h.chunk_id: h for h in lexical}
    out: list[FusedHit] = []
    for cid in by_dense.keys() | by_lexical.keys():
        d, lx = by_dense.get(cid), by_lexical.get(cid)
        either = d if d is not None else lx
        assert either is not None
        out.append(
            FusedHit(
                chunk_id=cid,
                doc_id=either.doc_id,
                fused=dense_value.get(cid, 0.0) + lexical_value.get(cid, 0.0),
                dense_rank=d.rank if d else None,
                lexical_rank=lx.rank if lx else None,
                dense=d.score if d else None,
                lexical=lx.score if lx else None,
            )
        )
    return _sort(out)


def reciprocal_rank_fusion(dense: Sequence[Hit], lexical: Sequence[Hit], k: int = 60) -> list[FusedHit]:
    """RRF (Cormack et al. 2009): ranks only, so the two retrievers' score scales never meet."""
    if k < 0:
        raise InvalidRequest("rrf_k must be >= 0")
    d, lx = _normalise_ranks(dense), _normalise_ranks(lexical)
    return _merge(
        d,
        lx,
        {h.chunk_id: 1.0 / (k + h.rank) for h in d},
        {h.chunk_id: 1.0 / (k + h.rank) for h in lx},
    )


def _min_max(hits: list[Hit]) -> dict[str, float]:
    if not hits:
        return {}
    scores = [h.score for h in hits]
    low, high = min(scores), max(scores)
    if high == low:
        return {h.chunk_id: 1.0 for h in hits}
    return {h.chunk_id: (h.score - low) / (high - low) for h in hits}


def weighted_fusion(
    dense: Sequence[Hit], lexical: Sequence[Hit], dense_weight: float = 0.5
) -> list[FusedHit]:
    """Convex mix of min-max normalised scores; a chunk one side missed gets 0 from it."""
    if not 0.0 <= dense_weight <= 1.0:
        raise InvalidRequest("fusion_dense_weight must be between 0 and 1")
    d, lx = _normalise_ranks(dense), _normalise_ranks(lexical)
    dn, ln = _min_max(d), _min_max(lx)
    return _merge(
        d,
        lx,
        {cid: dense_weight * v for cid, v in dn.items()},
        {cid: (1.0 - dense_weight) * v for cid, v in ln.items()},
    )


def fuse(
    dense: Sequence[Hit],
    lexical: Sequence[Hit],
    method: FusionMethod = "rrf",
    *,
    rrf_k: int = 60,
    dense_weight: float = 0.5,
) -> list[FusedHit]:
    if method == "rrf":
        return reciprocal_rank_fusion(dense, lexical, rrf_k)
    if method == "weighted":
        return weighted_fusion(dense, lexical, dense_weight)
    raise InvalidRequest(f"unknown fusion method {method!r}")
