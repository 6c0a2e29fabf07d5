from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.errors import InvalidRequest
from rag.packing import Candidate, ContextPacker, edge_order, pack_context
from rag.tokens import count_tokens
from rag.types import Chunk, StoredChunk

WORDS = ["river", "tax", "engine", "oxygen", "ledger", "harvest", "falcon", "quartz", "treaty", "violin"]
LABEL = re.compile(r"^\[(\d+)\] ", re.MULTILINE)


def sentences_of(doc: str, count: int) -> list[str]:
    # every sentence is unique in the whole corpus, so any repeat in a context is a packing bug
    return [f"Sentence {doc}-{i} says the {WORDS[i % len(WORDS)]} moved {i * 7} units." for i in range(count)]


def chunk(doc: str, sentences: list[str], first: int, last: int, *, per_page: int = 3) -> StoredChunk:
    """Sentences ``first..last`` of ``doc`` as a chunk with exact offsets into the joined text."""
    start = sum(len(s) + 1 for s in sentences[:first])
    text = " ".join(sentences[first : last + 1])
    return StoredChunk(
        chunk=Chunk(
            id=f"{doc}:{first:06d}",
            doc_id=doc,
            ordinal=first,
            text=text,
            page_start=first // per_page + 1,
            page_end=last // per_page + 1,
            char_start=start,
            char_end=start + len(text),
            token_count=count_tokens(text),
        ),
        document_name=f"{doc}.pdf",
        collection="default",
        content_sha256=f"sha-{doc}",
    )


@st.composite
def candidate_sets(draw: st.DrawFn) -> list[Candidate]:
    docs = {d: sentences_of(d, 12) for d in ("alpha", "beta", "gamma")}
    out: list[Candidate] = []
    n = draw(st.integers(1, 12))
    scores = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n, unique=True))
    for score in sorted(scores, reverse=True):
        doc = draw(st.sampled_from(sorted(docs)))
        first = draw(st.integers(0, 11))
        last = draw(st.integers(first, min(11, first + 4)))
        out.append(Candidate(chunk(doc, docs[doc], first, last), score))
    return out


@settings(max_examples=120, deadline=None)
@given(candidates=candidate_sets(), budget=st.integers(40, 700))
def test_packing_respects_budget_never_repeats_and_labels_contiguously(
    candidates: list[Candidate], budget: int
) -> None:
    packed = ContextPacker(budget).pack(candidates)
    assert packed.tokens_used == count_tokens(packed.text) <= budget
    all_sentences = [s for d in ("alpha", "beta", "gamma") for s in sentences_of(d, 12)]
    for sentence in all_sentences:
        assert packed.text.count(sentence) <= 1, sentence
    labels = [int(n) for n in LABEL.findall(packed.text)]
    assert labels == list(range(1, len(packed.sources) + 1))
    assert [s.n for s in packed.sources] == labels
    for source in packed.sources:
        assert source.text in packed.text
    if packed.sources:
        # the strongest at the edges: first the best, last the second best
        assert packed.sources[0].score == max(s.score for s in packed.sources)
        if len(packed.sources) > 1:
            assert packed.sources[-1].score == sorted((s.score for s in packed.sources), reverse=True)[1]


def test_overlapping_neighbours_of_one_document_become_one_source() -> None:
    sentences = sentences_of("alpha", 9)
    first = chunk("alpha", sentences, 0, 3)
    second = chunk("alpha", sentences, 2, 5)
    other = chunk("beta", sentences_of("beta", 4), 0, 1)
    packed = pack_context([Candidate(first, 0.9), Candidate(other, 0.8), Candidate(second, 0.7)], 2000)
    alpha = [s for s in packed.sources if s.document_id == "alpha"]
    assert len(packed.sources) == 2 and len(alpha) == 1
    assert alpha[0].text == " ".join(sentences[0:6])
    assert alpha[0].pages == [1, 2] and alpha[0].score == 0.9
    assert packed.merged == 1
    assert packed.chunk_ids[alpha[0].n] == [first.chunk.id, second.chunk.id]


def test_adjacent_chunks_merge_without_losing_text() -> None:
    sentences = sentences_of("alpha", 6)
    left = chunk("alpha", sentences, 0, 2)
    right_text = " " + " ".join(sentences[3:6])  # offsets that abut exactly
    right = StoredChunk(
        chunk=Chunk(
            "alpha:000003",
            "alpha",
            3,
            right_text,
            2,
            2,
            left.chunk.char_end,
            left.chunk.char_end + len(right_text),
            count_tokens(right_text),
        ),
        document_name="alpha.pdf",
        collection="default",
        content_sha256="sha-alpha",
    )
    packed = pack_context([Candidate(right, 0.9), Candidate(left, 0.5)], 2000)
    assert len(packed.sources) == 1
    assert packed.sources[0].text == " ".join(sentences)
    assert packed.sources[0].pages == [1, 2]


def test_a_chunk_inside_one_already_packed_adds_nothing() -> None:
    sentences = sentences_of("alpha", 6)
    packed = pack_context(
        [Candidate(chunk("alpha", sentences, 0, 5), 0.9), Candidate(chunk("alpha", sentences, 1, 2), 0.8)],
        2000,
    )
    assert len(packed.sources) == 1 and packed.dropped["contained"] == 1


def test_near_duplicates_across_documents_are_dropped() -> None:
    sentences = sentences_of("alpha", 8)
    copy = [*sentences[:-1], sentences[-1].replace("units", "unit")]  # one word differs
    original = chunk("alpha", sentences, 0, 7)
    duplicate = chunk("copy", copy, 0, 7)
    different = chunk("beta", sentences_of("beta", 8), 0, 7)
    packed = pack_context(
        [Candidate(original, 0.9), Candidate(duplicate, 0.8), Candidate(different, 0.7)], 4000
    )
    assert [s.document_id for s in packed.sources] == ["alpha", "beta"]
    assert packed.dropped["duplicate"] == 1


def test_chunks_with_untrustworthy_offsets_still_merge_by_their_text() -> None:
    sentences = sentences_of("alpha", 6)
    a = chunk("alpha", sentences, 0, 3)
    b = chunk("alpha", sentences, 2, 5)
    # a chunker that strips whitespace makes text and offsets disagree by a character
    shifted = StoredChunk(
        chunk=dataclasses.replace(b.chunk, text=b.chunk.text + " "),
        document_name=b.document_name,
        collection=b.collection,
        content_sha256=b.content_sha256,
    )
    packed = pack_context([Candidate(a, 0.9), Candidate(shifted, 0.8)], 2000)
    assert len(packed.sources) == 1
    assert packed.sources[0].text == " ".join(sentences)


def test_budget_drops_what_does_not_fit_and_truncates_a_lone_giant() -> None:
    sentences = sentences_of("alpha", 12)
    big = chunk("alpha", sentences, 0, 11)
    small = chunk("beta", sentences_of("beta", 2), 0, 0)
    packed = pack_context([Candidate(big, 0.9), Candidate(small, 0.5)], 40)
    assert packed.tokens_used <= 40
    assert [s.document_id for s in packed.sources] == ["beta"]
    assert packed.dropped["budget"] == 1
    lone = pack_context([Candidate(big, 0.9)], 40)
    assert lone.truncated and lone.tokens_used <= 40
    assert lone.sources and big.chunk.text.startswith(lone.sources[0].text)


def test_labels_inside_source_text_cannot_pose_as_sources() -> None:
    text_chunk = chunk("alpha", ["As shown in [2] and [3, 4], rivers flow."], 0, 0)
    packed = pack_context([Candidate(text_chunk, 1.0)], 500)
    assert LABEL.findall(packed.text) == ["1"]
    assert "[2]" not in packed.text and "(2)" in packed.text
    assert packed.sources[0].text == "As shown in [2] and [3, 4], rivers flow."


def test_header_names_document_and_pages() -> None:
    sentences = sentences_of("alpha", 9)
    packed = pack_context([Candidate(chunk("alpha", sentences, 2, 7), 1.0)], 500)
    assert packed.text.splitlines()[0] == "[1] alpha.pdf (pp. 1-3)"
    assert packed.sources[0].pages == [1, 2, 3]


def test_edge_order() -> None:
    assert edge_order(5) == [0, 2, 4, 3, 1]
    assert edge_order(0) == []
    assert sorted(edge_order(8)) == list(range(8))


def test_budget_is_counted_with_the_target_models_tokenizer() -> None:
    text = " ".join(sentences_of("alpha", 12))
    packed_4o = ContextPacker(1000, model="gpt-4o").pack([Candidate(chunk("alpha", [text], 0, 0), 1.0)])
    packed_4 = ContextPacker(1000, model="gpt-4").pack([Candidate(chunk("alpha", [text], 0, 0), 1.0)])
    assert packed_4o.tokens_used == count_tokens(packed_4o.text, "o200k_base")
    assert packed_4.tokens_used == count_tokens(packed_4.text, "cl100k_base")


def test_a_non_positive_budget_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        ContextPacker(0)
