"""Every embedding backend keeps the ``Embedder`` contract, and the ONNX ones stay the model.

Real exports of the real MiniLM model (torch's exporter, onnxruntime's quantiser), compared with
sentence-transformers on real sentences; a corrupted export is found and rebuilt, never used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.embedder import BACKENDS, Embedder, get_embedder
from rag.errors import EmbeddingModelMismatch
from rag.index.store import open_store
from rag.onnx_embedder import OnnxEmbedder
from rag.settings import Settings
from tests.rag.test_index import DOC_A1, write

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module", params=BACKENDS)
def any_embedder(request: pytest.FixtureRequest, exports: Path) -> Embedder:
    return get_embedder(MODEL, cache_dir=exports, backend=request.param)


@pytest.fixture(scope="module")
def sentences(datasets: Path) -> list[str]:
    """About 200 real sentences: SQuAD 2.0 contexts, cut at full stops."""
    squad = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    out: list[str] = []
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            out.extend(s.strip() for s in paragraph["context"].split(". ") if len(s) > 40)
        if len(out) >= 200:
            break
    assert len(out) >= 100
    return out[:200]


def test_the_contract(any_embedder: Embedder) -> None:
    vectors = any_embedder.embed(["The tower was completed in 1889.", "Rye was ground at the mill."])
    assert vectors.shape == (2, any_embedder.dim) == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert any_embedder.embed([]).shape == (0, 384)
    query = any_embedder.embed_query("When was the tower completed?")
    assert getattr(query, "spec", None) == any_embedder.spec and any_embedder.spec.dim == 384
    assert any_embedder.max_tokens == 256
    assert any_embedder.count_tokens("The tower was completed in 1889.") == 9
    assert any_embedder.count_tokens_batch(["a b", "The tower"]) == [4, 4]
    # order and batching do not change a text's vector, except that int8 quantises activations
    # with one scale per batch: a text's int8 vector moves a little with its batch-mates
    many = [f"Sentence number {n} about a different subject {n * 7}." for n in range(70)]
    together, alone = any_embedder.embed(many)[5], any_embedder.embed([many[5]])[0]
    if any_embedder.spec.backend == "onnx-int8":
        assert float(together @ alone) >= 0.98
    else:
        assert np.allclose(together, alone, atol=1e-5)


SHIPPED_BATCH = Settings.model_fields["embedding_batch_size"].default


@pytest.mark.parametrize("batch", sorted({1, SHIPPED_BATCH, 32}))
@pytest.mark.parametrize(("backend", "floor"), [("onnx", 0.99), ("onnx-int8", 0.97)])
def test_the_exports_give_the_models_vectors(
    backend: str, floor: float, batch: int, exports: Path, sentences: list[str]
) -> None:
    # int8's activation scale is per forward batch, so its vectors are checked at each batch size
    reference = get_embedder(MODEL).embed(sentences)
    vectors = get_embedder(MODEL, batch_size=batch, cache_dir=exports, backend=backend).embed(sentences)
    cosine = (reference * vectors).sum(axis=1)
    assert cosine.min() >= floor, (cosine.min(), cosine.mean())


def test_a_corrupted_export_is_rebuilt_not_used(tmp_path: Path, sentences: list[str]) -> None:
    first = OnnxEmbedder(MODEL, backend="onnx-int8", cache_dir=tmp_path)
    expected = first.embed(sentences[:5])
    data = bytearray(first.path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\0" * 4096  # damaged weights still load
    first.path.write_bytes(bytes(data))
    again = OnnxEmbedder(MODEL, backend="onnx-int8", cache_dir=tmp_path)
    assert again.path == first.path and np.allclose(again.embed(sentences[:5]), expected, atol=1e-6)
    first.path.write_bytes(b"truncated")
    assert np.allclose(
        OnnxEmbedder(MODEL, backend="onnx-int8", cache_dir=tmp_path).embed(sentences[:5]), expected
    )


def test_a_query_through_another_backend_is_refused(settings: Settings, exports: Path) -> None:
    torch_embedder = get_embedder(MODEL)
    store = open_store(settings)
    write(store, torch_embedder, "a1", "tower.txt", DOC_A1)
    int8 = get_embedder(MODEL, cache_dir=exports, backend="onnx-int8")
    with pytest.raises(EmbeddingModelMismatch) as caught:
        store.dense(int8.embed_query("When was the tower completed?"), 5, "default")
    assert "onnx-int8" in caught.value.message and "rag reindex" in caught.value.message
    assert store.dense(torch_embedder.embed_query("When was the tower completed?"), 5, "default")
    store.close()


def test_a_collection_is_served_with_its_own_backend(make_settings: Any, exports: Path) -> None:
    from service.runtime import Runtime

    made = make_settings(embedding_backend="onnx-int8", model_cache_dir=exports)
    with Runtime(made) as rt:
        rt.ingestion.ingest_file(_note(made.data_dir.parent))
        embedding = rt.index.embedding("default")
        assert embedding is not None and embedding.spec.backend == "onnx-int8"
    # the service now configured for torch still queries that collection through int8
    with Runtime(make_settings(model_cache_dir=exports)) as rt:
        assert rt.embedders.for_collection("default").spec.backend == "onnx-int8"
        hits = rt.index.dense(
            rt.embedders.for_collection("default").embed_query("lighthouse keeper"), 3, "default"
        )
        assert hits


def _note(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "keeper.txt"
    path.write_text("The lighthouse keeper logged every passing ship in a green ledger. " * 5)
    return path


def _rag(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_rag_models_prepare_exports_once_and_reports_what_it_made(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(tmp_path / "var"),
        "RAG_MODEL_CACHE_DIR": str(tmp_path / "models"),
    }
    made = _rag("models", "prepare", "--backend", "onnx-int8", "--json", env=env)
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    onnx = Path(report["onnx_file"])
    assert (report["model"], report["backend"], report["dim"]) == (MODEL, "onnx-int8", 384)
    assert onnx.is_file() and onnx.parent.parent == tmp_path / "models" / "onnx"
    # the service finds the same file, verified, and does not export again
    assert OnnxEmbedder(MODEL, backend="onnx-int8", cache_dir=tmp_path / "models").path == onnx
    stamp = onnx.stat().st_mtime_ns
    again = _rag("models", "prepare", "--backend", "onnx-int8", env=env)
    assert again.returncode == 0 and "onnx-int8, 384 dims" in again.stdout, again.stderr
    assert onnx.stat().st_mtime_ns == stamp

    missing = _rag("models", "prepare", "--model", str(tmp_path / "no-such-model"), env=env)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("rag: model_unavailable:"), missing.stderr
    wrong = _rag("models", "prepare", "--backend", "tensorrt", env=env)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
