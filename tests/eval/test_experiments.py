"""The experiments' pieces on a tiny set: retrieval through the stage, systems scored, floor signals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.experiments.__main__ import main
from eval.experiments.common import Corpus, ingest, retrieve_all
from eval.experiments.floor import SIGNALS, _signals
from eval.experiments.levers import COMMON, LEVERS
from eval.experiments.retrieval import RETRIEVAL_METRICS, RetrievalRun, _score_systems, _systems
from eval.golden import EvidenceRef, GoldenRecord, GoldenSet, SourceDocument
from eval.runner import InProcessTarget, RunOptions, parse_overrides
from rag.fusion import fuse
from rag.settings import load_settings

pytestmark = pytest.mark.slow  # the real embedding model and a real index

GOLDEN = GoldenSet(
    name="tiny experiments",
    records=[
        GoldenRecord(
            id="penguins",
            question="Where do penguins live?",
            answers=["Antarctica"],
            evidence=[EvidenceRef(doc="penguins.txt")],
        ),
        GoldenRecord(
            id="lava",
            question="What is molten rock from a volcano called?",
            answers=["lava"],
            evidence=[EvidenceRef(doc="volcano.txt")],
        ),
        GoldenRecord(id="unanswerable", question="Who won the 1954 chess olympiad?", answerable=False),
    ],
    documents=[
        SourceDocument(id="penguins.txt", text="Penguins live in Antarctica and eat krill."),
        SourceDocument(id="volcano.txt", text="A volcano erupts molten rock called lava."),
        SourceDocument(id="orchard.txt", text="The orchard grows twelve varieties of apple."),
    ],
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessTarget]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("experiments") / "var", reranker="none")
    target = InProcessTarget(settings, RunOptions())
    yield target
    asyncio.run(target.aclose())


@pytest.fixture(scope="module")
def corpus(target: InProcessTarget) -> Corpus:
    return ingest(target, GOLDEN, lambda _m: None)


def test_retrieval_goes_through_the_stage_and_every_system_is_scored(
    target: InProcessTarget, corpus: Corpus
) -> None:
    assert corpus.chunks == 3 and set(corpus.golden_ids.values()) == {d.id for d in GOLDEN.documents}
    records = [r for r in GOLDEN.records if r.answerable]
    retrieved, seconds = retrieve_all(target, corpus, [r.question for r in records], lambda _m: None)
    assert seconds > 0 and len(retrieved) == 2
    for r in retrieved:
        assert r.dense and r.lexical and r.ranked == []  # k=0: the ranked lists only, nothing fetched
        s = target.settings
        plain = {
            h.chunk_id: h.fused
            for h in fuse(r.dense, r.lexical, s.fusion, rrf_k=s.rrf_k, dense_weight=s.fusion_dense_weight)
        }
        assert {h.chunk_id for h in r.fused} == set(plain)
        # the question names its document ("penguins.txt"): the boost only ever lifts a score
        assert all(h.fused >= plain[h.chunk_id] for h in r.fused)
        assert any(h.fused > plain[h.chunk_id] for h in r.fused)
    run = RetrievalRun(corpus, records, retrieved, seconds)
    systems = _systems(target.settings)
    for name, system in systems.items():
        per_query = run.per_query(system)
        assert set(per_query) == set(RETRIEVAL_METRICS)
        assert per_query["hit@1"] == {"penguins": 1.0, "lava": 1.0}, name
    scored = _score_systems(run, systems, seed=0)
    assert scored["results"]["bm25"]["mrr@10"]["value"] == 1.0
    assert "hybrid_weighted - bm25" in scored["paired_difference"]


def test_floor_signals_come_from_the_pipelines_own_steps(target: InProcessTarget, corpus: Corpus) -> None:
    groups = {r.id: r.id for r in GOLDEN.records}
    signals = _signals(target, corpus, GOLDEN.records, groups, lambda _m: None)
    assert [s.qid for s in signals] == ["penguins", "lava", "unanswerable"]
    assert [s.answerable for s in signals] == [True, True, False]
    for s in signals:
        assert set(s.values) == set(SIGNALS)
        assert 0.0 < s.values["weighted_top"] <= 1.0 and 0.0 < s.values["rrf_top"] < 1.0
    by_id = {s.qid: s.values for s in signals}
    assert by_id["penguins"]["dense_top"] > by_id["unanswerable"]["dense_top"]
    assert by_id["penguins"]["extractive_top"] > 0


def test_the_entry_point_offers_every_experiment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "{retrieval,floor,context,levers,backends,followups}" in capsys.readouterr().out


@pytest.mark.slow
def test_levers_runs_each_lever_through_rag_eval_and_tabulates_it(tmp_path: Path) -> None:
    reports, out = tmp_path / "reports", tmp_path / "out"
    args = ["levers", "--sets", "squad2-ci", "--reports", str(reports), "--out", str(out)]
    assert main([*args, "--data-dir", str(tmp_path / "data"), "--quiet"]) == 0
    table = json.loads((out / "levers.json").read_text())["sets"]["squad2-ci"]
    assert table["level"] == "document" and table["questions"] == 30
    assert list(table["levers"]) == list(LEVERS)
    for lever, row in table["levers"].items():
        # each run is `rag eval` with the lever's settings
        assert parse_overrides(row["config"]) == parse_overrides(f"{COMMON},{LEVERS[lever]}")
        assert 0.0 <= row["figures"]["hit@5"]["value"] <= 1.0
        assert row["verdict"] in (("-",) if lever == "base" else ("better", "worse", "unchanged"))
    assert "| shipped |" in (out / "levers.md").read_text()
    # a second run finds every report and runs nothing again
    stamps = {p: p.stat().st_mtime for p in reports.rglob("*.json")}
    assert main([*args, "--data-dir", str(tmp_path / "data"), "--quiet"]) == 0
    assert {p: p.stat().st_mtime for p in reports.rglob("*.json")} == stamps


def test_context_coverage_finds_an_evidence_sentence_page_or_answer() -> None:
    from eval.experiments.context import covered

    # ClapNQ's evidence joins sentences that are not adjacent in the passage
    record = GoldenRecord(
        id="sirens",
        question="what are the sirens in o brother where art thou",
        answers=["Delmar is convinced three women were Sirens."],
        evidence=[
            EvidenceRef(
                doc="clapnq-1.txt",
                text="They see three women washing clothes and singing . Delmar is convinced the women were Sirens .",
            )
        ],
    )
    passage = "They see three women washing clothes and singing . The women drug them with corn whiskey ."
    assert covered(record, f"[1] O Brother\n{passage}", set())
    assert not covered(record, "[1] Ulysses\nThe women sing .", set())
    filing = GoldenRecord(
        id="capex",
        question="3M capex 2018?",
        answers=["$1577.00"],
        evidence=[EvidenceRef(doc="3M.pdf", page=60)],
    )
    assert covered(filing, "(1,577)", {("3M.pdf", 60)})
    assert not covered(filing, "(1,577)", {("3M.pdf", 59)})
