"""Golden-set loaders, the shipped sets, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.golden import (
    DEFAULT_GOLDEN_DIR,
    EvidenceRef,
    list_sets,
    load_beir,
    load_financebench,
    load_jsonl,
    load_set,
    load_squad,
    page_key,
    write_set,
)
from rag.errors import GoldenSetNotFound, InvalidGoldenSet

SQUAD_V2 = {
    "version": "v2.0",
    "data": [
        {
            "title": "Normans",
            "paragraphs": [
                {
                    "context": "The Normans gave their name to Normandy, a region in France.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "In what country is Normandy located?",
                            "answers": [
                                {"text": "France", "answer_start": 75},
                                {"text": "France", "answer_start": 75},
                            ],
                            "is_impossible": False,
                        },
                        {
                            "id": "q2",
                            "question": "Who gave their name to Italy?",
                            "answers": [],
                            "plausible_answers": [{"text": "The Normans", "answer_start": 0}],
                            "is_impossible": True,
                        },
                    ],
                }
            ],
        }
    ],
}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_squad_v2(tmp_path: Path) -> None:
    golden = load_squad(_write(tmp_path / "dev.json", json.dumps(SQUAD_V2)))
    q1, q2 = golden.records
    assert q1.answers == ["France"] and q1.answerable
    assert q1.evidence == [EvidenceRef(doc="normans-p000.txt", text="France")]
    assert not q2.answerable and q2.answers == [] and q2.evidence == []
    assert [d.id for d in golden.documents] == ["normans-p000.txt"]
    assert golden.documents[0].read_bytes().startswith(b"The Normans")
    assert golden.qrels() == {"q1": {"normans-p000.txt": 1}}


def test_squad_v1_has_no_unanswerable(tmp_path: Path) -> None:
    v1 = json.loads(json.dumps(SQUAD_V2))
    v1["version"] = "1.1"
    qas = v1["data"][0]["paragraphs"][0]["qas"]
    del qas[1]
    del qas[0]["is_impossible"]
    golden = load_squad(_write(tmp_path / "v1.json", json.dumps(v1)))
    assert [r.answerable for r in golden.records] == [True]


def test_beir(tmp_path: Path) -> None:
    root = tmp_path / "beir"
    _write(
        root / "corpus.jsonl",
        '{"_id": "d1", "title": "Cats", "text": "Cats purr."}\n'
        '{"_id": "d2", "title": "", "text": "Dogs bark."}\n',
    )
    _write(root / "queries.jsonl", '{"_id": "q1", "text": "purring"}\n{"_id": "q2", "text": "unjudged"}\n')
    _write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n")
    golden = load_beir(root)
    assert golden.kind == "retrieval"
    assert [r.id for r in golden.records] == ["q1"]  # only judged queries, as BEIR
    assert golden.qrels() == {"q1": {"d1": 2}}  # graded relevance kept, zero dropped
    assert golden.documents[0].text == "Cats\n\nCats purr."
    assert golden.documents[1].text == "Dogs bark."
    assert load_set(root).records == golden.records


def test_beir_qrels_that_name_unknown_queries_are_rejected(tmp_path: Path) -> None:
    root = tmp_path / "beir"
    _write(root / "corpus.jsonl", '{"_id": "d1", "text": "x"}\n')
    _write(root / "queries.jsonl", '{"_id": "q1", "text": "x"}\n')
    _write(root / "qrels" / "dev.tsv", "q9\td1\t1\n")
    with pytest.raises(InvalidGoldenSet, match="q9"):
        load_beir(root)


def test_financebench_pages_become_one_based(tmp_path: Path) -> None:
    row = {
        "financebench_id": "fb1",
        "doc_name": "3M_2018_10K",
        "question": "What is the FY2018 capex?",
        "answer": "$1577.00",
        "evidence": [
            {"evidence_text": "Purchases of PP&E (1,577)", "doc_name": "3M_2018_10K", "evidence_page_num": 59}
        ],
    }
    data = _write(tmp_path / "data" / "fb.jsonl", json.dumps(row) + "\n")
    (tmp_path / "pdfs").mkdir()
    with pytest.raises(InvalidGoldenSet, match=r"3M_2018_10K\.pdf"):
        load_financebench(data)
    (tmp_path / "pdfs" / "3M_2018_10K.pdf").write_bytes(b"%PDF-1.4 stub")
    golden = load_set(data)  # detected as FinanceBench by its fields
    assert golden.records[0].evidence[0].page == 60
    assert golden.qrels("page") == {"fb1": {page_key("3M_2018_10K.pdf", 60): 1}}
    assert golden.documents[0].path == tmp_path / "pdfs" / "3M_2018_10K.pdf"


def test_clapnq(tmp_path: Path) -> None:
    root = tmp_path / "clapnq"
    answerable = {
        "id": "11",
        "input": "why do cats purr",
        "passages": [
            {"title": "Cat", "text": "Cats purr when content. ", "sentences": ["Cats purr when content."]}
        ],
        "output": [{"answer": "Cats purr when content.", "selected_sentences": ["Cats purr when content."]}],
    }
    unanswerable = {
        "id": "12",
        "input": "why do cats bark",
        "passages": [{"title": "Cat", "text": "Cats meow.", "sentences": ["Cats meow."]}],
        "output": [{"answer": "", "selected_sentences": []}],
    }
    _write(
        root / "annotated_data" / "a.jsonl", json.dumps(answerable) + "\n" + json.dumps(unanswerable) + "\n"
    )
    _write(
        root / "retrieval" / "q.tsv",
        "id\tquestion\tdoc-id-list\tanswers\n11\twhy do cats purr\tp77\tx\n12\tbark\t\t\n",
    )
    golden = load_set(root)
    a, u = golden.records
    assert a.answerable and a.evidence == [EvidenceRef(doc="clapnq-p77.txt", text="Cats purr when content.")]
    assert not u.answerable and u.answers == []
    assert {d.id for d in golden.documents} == {"clapnq-p77.txt", "clapnq-q12.txt"}
    assert (
        next(d for d in golden.documents if d.id == "clapnq-p77.txt").text == "Cat\n\nCats purr when content."
    )


def test_own_jsonl_and_write_round_trip(tmp_path: Path) -> None:
    source = load_squad(_write(tmp_path / "dev.json", json.dumps(SQUAD_V2)), name="tiny")
    out = tmp_path / "tiny"
    out.mkdir()
    write_set(source, out)
    again = load_set(out)
    assert again.records == source.records
    assert [d.read_bytes() for d in again.documents] == [d.read_bytes() for d in source.documents]
    assert again.content_key() == source.content_key()
    plain = load_jsonl(out / "questions.jsonl")  # the record file alone, with docs/ beside it
    assert plain.records == source.records


def test_manifest_can_reference_the_shared_datasets_folder(tmp_path: Path) -> None:
    source = load_squad(_write(tmp_path / "dev.json", json.dumps(SQUAD_V2)))
    shared = tmp_path / "shared"
    _write(shared / "squad" / "para.txt", source.documents[0].text or "")
    out = tmp_path / "set"
    out.mkdir()
    write_set(source, out, external={"normans-p000.txt": "datasets:squad/para.txt"})
    assert not (out / "docs" / "normans-p000.txt").exists()
    loaded = load_set(out, datasets_dir=shared)
    assert loaded.documents[0].path == shared / "squad" / "para.txt"
    assert loaded.documents[0].read_bytes() == source.documents[0].read_bytes()
    with pytest.raises(InvalidGoldenSet, match="shared datasets"):
        load_set(out, datasets_dir=tmp_path / "elsewhere")


def test_changed_document_is_caught_by_its_hash(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    out.mkdir()
    write_set(load_squad(_write(tmp_path / "dev.json", json.dumps(SQUAD_V2))), out)
    (out / "docs" / "normans-p000.txt").write_text("edited", encoding="utf-8")
    with pytest.raises(InvalidGoldenSet, match="sha256"):
        load_set(out).documents[0].read_bytes()


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(GoldenSetNotFound, match="shipped sets"):
        load_set("no-such-set")
    with pytest.raises(InvalidGoldenSet, match=r"bad\.jsonl:2"):
        load_jsonl(_write(tmp_path / "bad.jsonl", '{"id": "a", "question": "q"}\n{not json}\n'))
    with pytest.raises(InvalidGoldenSet, match="unanswerable"):
        load_jsonl(
            _write(
                tmp_path / "u.jsonl", '{"id": "a", "question": "q", "answers": ["x"], "answerable": false}\n'
            )
        )
    with pytest.raises(InvalidGoldenSet, match="not in"):
        load_jsonl(
            _write(
                tmp_path / "e.jsonl", '{"id": "a", "question": "q", "evidence": [{"doc": "missing.txt"}]}\n'
            )
        )
    with pytest.raises(InvalidGoldenSet, match="SQuAD"):
        load_squad(_write(tmp_path / "x.json", '{"data": [{"title": "t"}]}'))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "d.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InvalidGoldenSet, match="page"):  # pages are 1-based
        load_jsonl(
            _write(
                tmp_path / "p.jsonl",
                '{"id": "a", "question": "q", "evidence": [{"doc": "d.txt", "page": 0}]}\n',
            )
        )
    with pytest.raises(InvalidGoldenSet, match="unsupported"):
        load_set(_write(tmp_path / "x.csv", "a,b\n"))


EXPECTED_SETS = {
    "squad2",
    "squad2-ci",
    "clapnq",
    "covidqa",
    "docugami-10q",
    "docugami-10q-all",
    "financebench",
    "financebench-scanned",
    "financebench-pages",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SETS))
def test_shipped_sets_are_complete_and_intact(name: str, datasets: Path) -> None:
    golden = load_set(name, datasets_dir=datasets)  # some sets reference the shared datasets' PDFs
    assert golden.license and golden.source
    assert (DEFAULT_GOLDEN_DIR / name / "NOTICE").exists()
    stats = golden.stats
    assert stats["questions"] == len(golden.records)
    assert stats["unanswerable"] == len(golden.records) - golden.answerable_count
    assert stats["documents"] == len(golden.documents)
    for doc in golden.documents:
        assert doc.read_bytes()  # present and matching its recorded sha256
    for record in golden.records:
        assert record.answerable == bool(record.answers)
        assert record.answerable == bool(record.evidence)


def test_shipped_sets_have_the_promised_shape() -> None:
    assert set(list_sets()) >= EXPECTED_SETS
    squad = load_set("squad2")
    assert len(squad.records) == 300 and squad.answerable_count == 150
    ci = load_set("squad2-ci")
    assert {r.id for r in ci.records} <= {r.id for r in squad.records} and len(ci.documents) == 20
    clap = load_set("clapnq")
    assert len(clap.records) == 200 and clap.answerable_count == 100
    covid = load_set("covidqa")
    assert len(covid.records) == 200 and covid.stats["estimated_chunks"] <= 1500
    docugami = load_set("docugami-10q")
    assert 45 <= len(docugami.records) <= 60
    assert all(d.id.endswith(".pdf") and d.pages for d in docugami.documents)
    assert docugami.qrels("page"), "the 10-Q set carries page-level evidence"


def test_subset_for_limit() -> None:
    squad = load_set("squad2")
    small = squad.subset(4)
    assert [r.id for r in small.records] == [r.id for r in squad.records[:4]]
    assert len(small.documents) == len(squad.documents)  # distractors kept by default
    cited = squad.subset(4, evidence_documents_only=True)
    assert {d.id for d in cited.documents} == {e.doc for r in small.records for e in r.evidence}
    with pytest.raises(InvalidGoldenSet):
        squad.subset(0)
