"""``rag eval`` on the command line: bad input, retrieval modes, --compare, --url against a server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.main import main
from eval.golden import EvidenceRef, GoldenRecord, GoldenSet, SourceDocument, load_set
from eval.runner import InProcessTarget, RetrievalMode, RunOptions, collection_name
from rag.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import free_port

KEY = "eval-key-0123456789abcdef"


def _run(tmp_path: Path, *args: str) -> int:
    return main(["--data-dir", str(tmp_path / "var"), "eval", "--out", str(tmp_path / "reports"), *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name a golden set"),
        (("--set", "squad2-ci", "--all"), "not both"),
        (("--set", "no-such-set"), "golden_set_not_found"),
        (("--set", "squad2-ci", "--limit", "0"), "--limit"),
        (("--set", "squad2-ci", "--config", "dense_kk=3"), "unknown setting"),
        (("--set", "squad2-ci", "--compare", "reranker=none", "reranker=none"), "two different"),
        (("--set", "squad2-ci", "--url", "http://127.0.0.1:9", "--config", "dense_k=3"), "own settings"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert _run(tmp_path, *args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_unreachable_service_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert _run(tmp_path, "--set", "squad2-ci", "--url", url, "--quiet") == 1
    assert "service_unreachable" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_single_retriever_modes_use_only_that_retriever(
    make_settings: Callable[..., Settings], mode: RetrievalMode
) -> None:
    settings = make_settings()
    golden = GoldenSet(
        name="modes",
        records=[
            GoldenRecord(
                id="q",
                question="Where do penguins live?",
                answers=["Antarctica"],
                evidence=[EvidenceRef(doc="penguins.txt")],
            )
        ],
        documents=[
            SourceDocument(id="penguins.txt", text="Penguins live in Antarctica and eat krill."),
            SourceDocument(id="volcano.txt", text="A volcano erupts molten rock called lava."),
        ],
    )

    async def search() -> list[tuple[int | None, int | None]]:
        target = InProcessTarget(settings, RunOptions(retrieval=mode))
        try:
            collection = collection_name(golden, settings)
            await target.ensure_documents(golden, collection)
            found = await target.search("Where do penguins live?", collection, 10)
        finally:
            await target.aclose()
        return [(h.scores.dense_rank, h.scores.lexical_rank) for h in found.results]

    ranks = asyncio.run(search())
    assert ranks, "nothing retrieved"
    if mode == "dense":
        assert all(d is not None and lx is None for d, lx in ranks)
        assert len(ranks) == 2  # dense search returns every chunk of a two-chunk collection
    else:
        assert all(d is None and lx is not None for d, lx in ranks)
        assert len(ranks) == 1  # BM25 only returns chunks that share a term with the question


@pytest.mark.slow
def test_compare_runs_both_configurations_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        tmp_path,
        "--set",
        "squad2-ci",
        "--limit",
        "6",
        "--json",
        "--quiet",
        "--compare",
        "retrieval=hybrid",
        "retrieval=lexical,dense_floor=none,top_k=1",
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    values = json.loads(out)
    assert set(values) == {"retrieval=hybrid", "retrieval=lexical,dense_floor=none,top_k=1"}
    assert all({"f1", "hit@5"} <= set(v) for v in values.values())
    tables = list((tmp_path / "reports").glob("*-compare.md"))
    assert len(tables) == 1
    table = tables[0].read_text()
    assert (
        "retrieval=hybrid" in table
        and "retrieval=lexical,dense_floor=none,top_k=1" in table
        and "| f1 |" in table
    )
    reports = [json.loads(p.read_text()) for p in (tmp_path / "reports").glob("*.json")]
    assert sorted(r["config"]["retrieval"] for r in reports) == ["hybrid", "lexical"]
    assert sorted(r["config"]["top_k"] for r in reports) == [1, 8]


@pytest.mark.slow
def test_url_mode_matches_the_in_process_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same questions over HTTP and in-process: the same service code gives the same figures."""
    server = LiveServer(
        tmp_path / "server" / "var",
        {
            "RAG_API_KEYS": f"{KEY}:evaluator",
            "RAG_RATE_LIMIT_PER_MINUTE": "100000",
        },  # polls add up on a busy machine
        name="eval",
    )
    server.start()
    try:
        args = ("--set", "squad2-ci", "--limit", "8", "--json", "--quiet", "--config", "reranker=none")
        assert _run(tmp_path / "local", *args) == 0
        local = json.loads(capsys.readouterr().out)
        remote_args = ("--set", "squad2-ci", "--limit", "8", "--json", "--quiet", "--url", server.url)
        code = _run(tmp_path / "remote", *remote_args, "--api-key", KEY)
        out, err = capsys.readouterr()
        assert code == 0, err
        remote = json.loads(out)
        # a second run finds every document already indexed (duplicates by content hash)
        assert _run(tmp_path / "again", *remote_args, "--api-key", KEY) == 0
        capsys.readouterr()
        with server.client(KEY) as client:
            listed = client.get("/v1/documents", params={"limit": 1000}).json()
            assert "total" in listed, listed
    finally:
        server.stop()
    assert listed["total"] == len(load_set("squad2-ci").documents)
    assert set(remote) == set(local)
    for name, value in local.items():
        assert remote[name] == pytest.approx(value, abs=1e-6), name
