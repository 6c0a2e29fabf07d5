"""The runner's pieces, and the CI gate: the squad2-ci subset through ``rag eval --baseline``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli.main import main
from eval.golden import REPO_ROOT, GoldenSet, SourceDocument, load_set
from eval.report import load_report
from eval.runner import (
    RunOptions,
    apply_overrides,
    collection_name,
    parse_overrides,
    strip_markers,
    to_outcome,
)
from rag.answer import Answer, RerankerInfo, Scores, SearchHit, SearchResult
from rag.citations import Citation
from rag.errors import InvalidRequest
from rag.settings import Settings

BASELINE = REPO_ROOT / "eval" / "baselines" / "squad2-ci.json"
API_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")  # the API's rule (api/auth.py)
ANSWER_KEYS = {"f1", "em", "abstention_f1", "citation_precision", "citation_recall"}


# --------------------------------------------------------------------------- overrides


def test_parse_overrides_reads_pairs_and_rejects_junk() -> None:
    assert parse_overrides(" fusion=rrf, dense-k=20 ,") == {"fusion": "rrf", "dense_k": "20"}
    assert parse_overrides("default") == {}
    with pytest.raises(InvalidRequest, match="KEY=VALUE"):
        parse_overrides("reranker")


def test_apply_overrides_validates_like_the_environment(settings: Settings) -> None:
    tuned, options = apply_overrides(settings, {"dense_k": "7", "retrieval": "dense", "reranker": "none"})
    assert (tuned.dense_k, tuned.reranker, options.retrieval) == (7, "none", "dense")
    assert settings.dense_k != 7  # the base is untouched
    assert apply_overrides(settings, {"relevance_floor": "none"})[0].relevance_floor is None
    assert apply_overrides(settings, {"dense_floor": "0.6"})[0].dense_floor == 0.6
    with pytest.raises(InvalidRequest, match="dense_floor=none"):
        apply_overrides(settings, {"dense_floor": "0.6", "retrieval": "lexical"})
    assert apply_overrides(settings, {"cache": "on"})[1] == RunOptions(bypass_cache=False)
    with pytest.raises(InvalidRequest, match="unknown setting"):
        apply_overrides(settings, {"dense_kk": "7"})
    with pytest.raises(InvalidRequest, match="dense_k"):
        apply_overrides(settings, {"dense_k": "many"})
    with pytest.raises(InvalidRequest, match="retrieval"):
        apply_overrides(settings, {"retrieval": "sparse"})
    with pytest.raises(InvalidRequest):  # overlap must stay below the chunk size
        apply_overrides(settings, {"chunk_tokens": "30"})


def _tiny_set(text: str) -> GoldenSet:
    return GoldenSet(name="tiny set", records=[], documents=[SourceDocument(id="a.txt", text=text)])


def test_collection_name_follows_contents_and_chunking(settings: Settings) -> None:
    name = collection_name(_tiny_set("one"), settings)
    assert API_COLLECTION.match(name), name
    assert name == collection_name(_tiny_set("one"), settings)
    assert name != collection_name(_tiny_set("two"), settings)
    rechunked, _ = apply_overrides(settings, {"chunk_tokens": "300"})
    assert name != collection_name(_tiny_set("one"), rechunked)
    retuned, _ = apply_overrides(settings, {"dense_k": "5"})  # query-time settings reuse the index
    assert name == collection_name(_tiny_set("one"), retuned)


# --------------------------------------------------------------------------- outcomes


def test_strip_markers_removes_labels_only() -> None:
    assert (
        strip_markers("Paris is the capital [1]. It is large [2, 3].") == "Paris is the capital. It is large."
    )
    assert strip_markers("In [the] 1990s") == "In [the] 1990s"


def _hit(chunk: str, doc_id: str, name: str, pages: tuple[int, int], text: str) -> SearchHit:
    return SearchHit(
        chunk_id=chunk,
        document_id=doc_id,
        document_name=name,
        page_start=pages[0],
        page_end=pages[1],
        text=text,
        scores=Scores(fused=0.03),
    )


def test_to_outcome_maps_service_ids_back_to_golden_names() -> None:
    info = RerankerInfo(name="none", available=False)
    search = SearchResult(
        results=[
            _hit("d1:000001", "d1", "stored-name.pdf", (2, 3), "Revenue was 5 million in 2023."),
            _hit("d2:000000", "d2", "other.txt", (1, 1), "Unrelated."),
        ],
        candidates=2,
        reranker=info,
        timings={},
    )
    answer = Answer(
        answer="Revenue was 5 million [1].",
        abstained=False,
        citations=[
            Citation(
                n=1,
                document_id="d1",
                document_name="stored-name.pdf",
                pages=[2, 3],
                snippet="Revenue was 5",
                chunk_id="d1:000001",
            )
        ],
        provider="extractive",
        timings={"total": 12.5},
        reranker=info,
    )
    outcome = to_outcome("q1", answer, search, {"d1": "golden.pdf"})
    assert outcome.answer == "Revenue was 5 million."
    assert [(r.doc, r.pages) for r in outcome.retrieved] == [("golden.pdf", [2, 3]), ("other.txt", [1])]
    cited = outcome.citations[0]
    assert (cited.doc, cited.pages) == ("golden.pdf", [2, 3])
    assert cited.text == "Revenue was 5 million in 2023."  # the whole chunk, not the snippet
    assert outcome.provider == "extractive" and outcome.timings_ms == {"total": 12.5}
    abstained = to_outcome("q2", answer.model_copy(update={"abstained": True}), None, {})
    assert abstained.answer == "" and abstained.abstained and abstained.retrieved == []


# --------------------------------------------------------------------------- the CI gate


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the gate tests: the second run finds the set already indexed."""
    return tmp_path_factory.mktemp("eval-gate")


@pytest.mark.slow
def test_ci_subset_passes_its_baseline(eval_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data-dir", str(eval_dir / "var"), "eval", "--set", "squad2-ci", "--json", "--quiet"]
    argv += ["--baseline", str(BASELINE), "--out", str(eval_dir / "reports")]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    values = json.loads(out)  # stdout holds only the JSON object
    assert ANSWER_KEYS | {"hit@5", "mrr@10"} <= set(values)
    baseline = load_report(BASELINE)
    golden = load_set("squad2-ci")
    assert baseline.counts["questions"] == len(golden.records)
    # sane, not just present: the gold paragraph is found and cited, unanswerables are recognised
    assert values["hit@5"] >= 0.9
    assert values["citation_precision"] >= 0.5
    assert 0.0 < values["f1"] <= 1.0
    assert "no regression" in err
    reports = sorted((eval_dir / "reports").glob("squad2-ci-*"))
    assert {p.suffix for p in reports} == {".json", ".md", ".html"}
    report = load_report(next(p for p in reports if p.suffix == ".json"))
    assert report.counts["errors"] == 0
    assert len(report.questions) == len(golden.records)


@pytest.mark.slow
def test_gate_catches_a_worse_configuration(eval_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A dense floor above any cosine similarity drops every source: the service abstains on everything.

    (Shallower retrieval, ``dense_k=1,lexical_k=1``, does not hurt this 20-paragraph subset: the
    gold paragraph is still first, so it cannot be the worse configuration here.)
    """
    argv = ["--data-dir", str(eval_dir / "var"), "eval", "--set", "squad2-ci", "--quiet"]
    argv += ["--config", "dense_floor=1.01", "--baseline", str(BASELINE)]
    argv += ["--out", str(eval_dir / "reports-worse")]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "regression" in out
    assert "citation_recall: 0.000 < baseline" in out
