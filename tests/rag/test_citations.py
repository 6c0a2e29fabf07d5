from __future__ import annotations

import json

from rag.citations import SNIPPET_CHARS, check_answer, is_abstention, parse_markers
from rag.llm.schema import ABSTENTION_SENTENCE
from rag.llm.types import SourceRef


def source(n: int, text: str, pages: list[int] | None = None) -> SourceRef:
    return SourceRef(
        n=n,
        chunk_id=f"doc{n}:000000",
        document_id=f"doc{n}",
        document_name=f"Report {n}.pdf",
        content_sha256=f"sha{n}",
        pages=pages or [n],
        text=text,
    )


SOURCES = [
    source(1, "The plant opened in 1998. It employs 400 people in the valley.", [3, 4]),
    source(2, "Revenue rose 12% in 2023. Costs fell slightly."),
]


def test_marker_forms() -> None:
    assert parse_markers("A [1]. B [1, 2]. C [3][4]. D [2-4]. E [ 5 ].") == [1, 1, 2, 3, 4, 2, 3, 4, 5]
    assert parse_markers("no markers, [a] or [] here") == []


def test_valid_citations_map_to_document_pages_and_supporting_snippet() -> None:
    checked = check_answer("The plant employs 400 people [1]. Revenue rose 12% [2][1].", SOURCES)
    assert [c.n for c in checked.citations] == [1, 2]
    first, second = checked.citations
    assert (first.document_id, first.document_name, first.pages) == ("doc1", "Report 1.pdf", [3, 4])
    assert first.snippet == "It employs 400 people in the valley."
    assert second.snippet == "Revenue rose 12% in 2023."
    assert checked.dropped == 0 and not checked.uncited and not checked.abstained


def test_labels_not_in_the_context_are_removed_and_counted() -> None:
    checked = check_answer("It opened in 1998 [1, 7]. Something invented [9].", SOURCES)
    assert [c.n for c in checked.citations] == [1]
    assert checked.dropped == 2
    assert "[7]" not in checked.text and "[9]" not in checked.text
    assert checked.text == "It opened in 1998 [1]. Something invented."


def test_an_answer_with_sources_but_no_valid_citation_is_flagged() -> None:
    assert check_answer("It opened in 1998.", SOURCES).uncited
    assert check_answer("It opened in 1998 [5].", SOURCES).uncited
    assert not check_answer("It opened in 1998.", []).uncited


def test_abstention_sentence_is_recognised() -> None:
    checked = check_answer(ABSTENTION_SENTENCE, SOURCES)
    assert checked.abstained and checked.citations == [] and not checked.uncited
    assert is_abstention("the documents do not say. They only cover 2023.")
    assert not is_abstention("The documents say it opened in 1998 [1].")


def test_json_answers_are_validated_and_their_citation_list_counts() -> None:
    raw = json.dumps({"answer": "Revenue rose 12%.", "citations": [2, 8], "abstained": False})
    checked = check_answer(raw, SOURCES, json_mode=True)
    assert checked.json_valid is True
    assert checked.text == "Revenue rose 12%."
    assert [c.n for c in checked.citations] == [2] and checked.dropped == 1
    repeated = json.dumps({"answer": "Revenue rose 12% [2][8].", "citations": [2, 8], "abstained": False})
    assert check_answer(repeated, SOURCES, json_mode=True).dropped == 1  # one invented label, said twice
    fenced = "```json\n" + json.dumps({"answer": "x", "citations": [], "abstained": True}) + "\n```"
    abstained = check_answer(fenced, SOURCES, json_mode=True)
    assert abstained.abstained and abstained.text == ABSTENTION_SENTENCE


def test_json_mode_falls_back_to_text_when_the_model_ignored_it() -> None:
    checked = check_answer("It opened in 1998 [1].", SOURCES, json_mode=True)
    assert checked.json_valid is False
    assert [c.n for c in checked.citations] == [1]


def test_long_snippets_are_cut_at_a_word() -> None:
    long_sentence = "Word " * 200 + "end."
    checked = check_answer("Words [1].", [source(1, long_sentence)])
    snippet = checked.citations[0].snippet
    assert len(snippet) <= SNIPPET_CHARS + 1 and snippet.endswith("…")
    assert long_sentence.startswith(snippet[:-1])


def test_marker_after_the_full_stop_cites_the_sentence_before_it() -> None:
    from rag.citations import check_answer
    from rag.llm.types import SourceRef

    source = SourceRef(
        n=1,
        chunk_id="d:000000",
        document_id="d",
        document_name="log.txt",
        content_sha256="x",
        pages=[1],
        text="Orchard log, spring. The harvest weighed 412 kilograms. Rain came late.",
    )
    checked = check_answer("The harvest weighed 412 kilograms. [1]", [source])
    assert "412 kilograms" in checked.citations[0].snippet
