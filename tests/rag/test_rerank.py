from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.errors import RerankerUnavailable
from rag.rerank import Reranker, build_reranker
from rag.rerank.cross_encoder import CrossEncoderReranker
from rag.rerank.http import HttpReranker
from rag.rerank.none import NoReranker
from rag.settings import Settings
from tests.fakes.rerank_server import RerankServer, overlap_score

QUERY = "when did the river flood the town"
PASSAGES = [
    "The stock market closed higher on Friday.",
    "The river flooded the town in the spring of 1927.",
    "Town records mention a flood.",
    "A recipe for lemon cake.",
    "When the river rose, the town was evacuated.",
]


def build_tiny_cross_encoder(target: Path) -> str:
    """A real BERT cross-encoder with random weights, saved like any hub model."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rag.models import bundled_model_path

    tokenizer = AutoTokenizer.from_pretrained(
        str(bundled_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    )
    torch.manual_seed(7)
    shape: dict[str, Any] = {
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 256,
        "num_labels": 1,
        "initializer_range": 0.5,  # spread the random scores so their order is unmistakable
    }
    config = BertConfig(**shape)
    BertForSequenceClassification(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return str(target)


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="module")
def rerank_server() -> Iterator[RerankServer]:
    with RerankServer(key="s3cret") as server:
        yield server


@pytest.fixture
def fake(rerank_server: RerankServer) -> Iterator[RerankServer]:
    rerank_server.set_mode("ok")
    yield rerank_server
    rerank_server.set_mode("ok")


# --- local cross-encoder --------------------------------------------------------------


@pytest.mark.slow
def test_local_cross_encoder_scores_with_the_models_own_predictions(
    tiny_cross_encoder: str, make_settings: Callable[..., Settings]
) -> None:
    from sentence_transformers import CrossEncoder

    reranker = build_reranker(make_settings(reranker="cross-encoder", reranker_model=tiny_cross_encoder))
    assert isinstance(reranker, CrossEncoderReranker) and isinstance(reranker, Reranker)
    assert reranker.available and reranker.reason is None and reranker.origin == "path"
    scores = reranker.score(QUERY, PASSAGES)
    expected = CrossEncoder(tiny_cross_encoder, device="cpu").predict([(QUERY, p) for p in PASSAGES])
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    order = sorted(range(len(PASSAGES)), key=lambda i: -scores[i])
    assert order == list(np.argsort(-np.asarray(expected), kind="stable"))
    assert len(set(np.round(scores, 6))) == len(PASSAGES)  # the order is decided, not a tie
    assert reranker.score(QUERY, []) == []


@pytest.mark.slow
def test_onnx_backend_loads_or_says_why(
    tiny_cross_encoder: str, make_settings: Callable[..., Settings]
) -> None:
    reranker = build_reranker(
        make_settings(reranker="cross-encoder", reranker_model=tiny_cross_encoder, reranker_backend="onnx")
    )
    if reranker.available:  # optimum[onnxruntime] installed: same model, same scores
        torch_scores = CrossEncoderReranker(tiny_cross_encoder).score(QUERY, PASSAGES)
        np.testing.assert_allclose(reranker.score(QUERY, PASSAGES), torch_scores, atol=1e-4)
    else:
        assert reranker.reason and "onnx" in reranker.reason
        with pytest.raises(RerankerUnavailable):
            reranker.score(QUERY, PASSAGES)


def test_an_unloadable_model_gives_an_unavailable_reranker_not_a_crash(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # the default hub model cannot be downloaded here; a broken local path fails the same way
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    for model in ("cross-encoder/ms-marco-MiniLM-L-6-v2", str(broken)):
        reranker = build_reranker(make_settings(reranker="cross-encoder", reranker_model=model))
        assert not reranker.available
        assert reranker.reason and model in reranker.reason
        assert model in reranker.name
        with pytest.raises(RerankerUnavailable):
            reranker.score(QUERY, PASSAGES)


def test_none_is_explicit(make_settings: Callable[..., Settings]) -> None:
    reranker = build_reranker(make_settings(reranker="none"))
    assert isinstance(reranker, NoReranker) and not reranker.available and reranker.reason
    with pytest.raises(RerankerUnavailable):
        reranker.score(QUERY, PASSAGES)


# --- HTTP (text-embeddings-inference /rerank) ------------------------------------------


def test_http_reranker_returns_scores_in_passage_order(
    fake: RerankServer, make_settings: Callable[..., Settings]
) -> None:
    reranker = build_reranker(
        make_settings(reranker="http", reranker_url=fake.url, reranker_api_key="s3cret")
    )
    assert isinstance(reranker, HttpReranker) and reranker.available
    scores = reranker.score(QUERY, PASSAGES)
    # the fake answers best-first, as TEI does; the client must put them back in passage order
    assert scores == [overlap_score(QUERY, p) for p in PASSAGES]
    assert fake.stats()["requests"][-1]["auth"] == "Bearer s3cret"


def test_http_reranker_batches_large_requests(fake: RerankServer) -> None:
    reranker = HttpReranker(fake.url, api_key="s3cret", batch_size=2)
    before = len(fake.stats()["requests"])
    scores = reranker.score(QUERY, PASSAGES)
    seen = fake.stats()["requests"][before:]
    assert [r["texts"] for r in seen] == [2, 2, 1]
    assert scores == [overlap_score(QUERY, p) for p in PASSAGES]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "500"), ("malformed", "malformed"), ("missing", "malformed"), ("slow", "timed out")],
)
def test_http_failures_become_reranker_unavailable(fake: RerankServer, mode: str, message: str) -> None:
    fake.set_mode(mode, delay=1.0)
    reranker = HttpReranker(fake.url, api_key="s3cret", timeout_s=0.3)
    with pytest.raises(RerankerUnavailable) as info:
        reranker.score(QUERY, PASSAGES)
    assert message in info.value.message


def test_http_wrong_key_and_unreachable_server(
    fake: RerankServer, make_settings: Callable[..., Settings]
) -> None:
    with pytest.raises(RerankerUnavailable) as info:
        HttpReranker(fake.url, api_key="wrong").score(QUERY, PASSAGES)
    assert "401" in info.value.message and "wrong" not in info.value.message
    from tests.conftest import free_port

    with pytest.raises(RerankerUnavailable, match="unreachable"):
        HttpReranker(f"http://127.0.0.1:{free_port()}", timeout_s=1).score(QUERY, PASSAGES)
    missing_url = build_reranker(make_settings(reranker="http"))
    assert not missing_url.available and missing_url.reason and "RAG_RERANKER_URL" in missing_url.reason
