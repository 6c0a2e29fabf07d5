"""Small to big: retrieve small chunks, then give the LLM what surrounds them on their page.

Small chunks are what retrieval ranks best (one fact, little noise); an answer often needs
the lines around it (the header row of a table, the sentence before). So after retrieval the
chunks next to each retrieved one, on the same page, become candidates too, ranked below every
retrieved chunk: the packer takes them only with budget left over, best parent first, and
merges each with its parent into one source because their offsets touch.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.index.base import IndexReader
from rag.packing import Candidate
from rag.types import StoredChunk, chunk_id


def with_neighbours(candidates: Sequence[Candidate], index: IndexReader, window: int) -> list[Candidate]:
    """``candidates`` (best first) followed by up to ``window`` chunks either side of each, same page."""
    if window <= 0 or not candidates:
        return list(candidates)
    seen = {c.chunk.chunk.id for c in candidates}
    wanted: list[tuple[str, StoredChunk]] = []
    for cand in candidates:
        parent = cand.chunk.chunk
        for step in range(1, window + 1):
            for ordinal in (parent.ordinal - step, parent.ordinal + step):
                cid = chunk_id(parent.doc_id, ordinal)
                if ordinal >= 0 and cid not in seen:
                    seen.add(cid)
                    wanted.append((cid, cand.chunk))
    found = {s.chunk.id: s for s in index.get([cid for cid, _ in wanted])}
    floor = min(c.score for c in candidates)
    extra: list[Candidate] = []
    for cid, origin in wanted:
        near = found.get(cid)
        if near is None or not _same_page(near, origin):
            continue
        # below every retrieved chunk, in the order of their parents
        extra.append(Candidate(near, floor - 1e-6 * (len(extra) + 1)))
    return [*candidates, *extra]


def _same_page(a: StoredChunk, b: StoredChunk) -> bool:
    return a.chunk.page_start <= b.chunk.page_end and b.chunk.page_start <= a.chunk.page_end
