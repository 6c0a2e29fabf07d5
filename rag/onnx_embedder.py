"""The installed sentence-transformers model on onnxruntime, in fp32 or dynamically quantised int8.

The model's transformer is exported to ONNX once (torch's TorchScript exporter) and, for
``onnx-int8``, quantised with onnxruntime's own ``quantize_dynamic`` (weights per channel: per
tensor cost the README's sentences a mean cosine of 0.953 to torch, per channel 0.991). Pooling
and normalisation, a few lines of numpy, are read from the model's own sentence-transformers
configuration. Exports live under ``<models dir>/onnx/<model content hash>/`` with a manifest of
their own hashes: a file that does not match (corrupt, truncated, from another model) is rebuilt,
never used. optimum would do the export, but optimum-onnx needs transformers < 4.58 and
sentence-transformers here runs on transformers 5. onnxruntime's transformer optimiser before
quantising (fused Attention, SkipLayerNorm, BiasGelu) was measured slower here at batches 1, 4
and 16: the session's own fusions already cover LayerNorm, GELU and the int8 MatMuls, and attention
(fused or not) keeps its batch x heads x tokens^2 scores. Smaller forward batches are what helps.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedder import Matrix
from rag.errors import ModelUnavailable
from rag.logs import log_event
from rag.models import canonical_model_name, resolve_model
from rag.vectors import EmbeddingSpec, tag

log = logging.getLogger(__name__)

EXPORT_REVISION = 1
"""Raised when the export or quantisation recipe changes: older exports are then rebuilt."""
OPSET = 17


class OnnxEmbedder:
    """The ``Embedder`` contract on onnxruntime (``backend``: ``onnx`` or ``onnx-int8``)."""

    def __init__(
        self,
        model: str,
        *,
        backend: str,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.name = model
        self.backend = backend
        self.loadable, self.origin = resolve_model(model, cache_dir)
        source = Path(self.loadable)
        if not (source / "modules.json").exists():
            raise ModelUnavailable(f"{model!r} is not a local sentence-transformers model: no ONNX export")
        layout = _Layout(source)
        exports = (cache_dir or Path(tempfile.gettempdir()) / "rag-models") / "onnx"
        self.path = prepared_model(source, exports, quantised=backend == "onnx-int8")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._tokenizer = AutoTokenizer.from_pretrained(str(source))
        self._count_tokenizer = copy.deepcopy(self._tokenizer)
        self.batch_size = batch_size
        self.dim = layout.dim
        self.max_tokens = layout.max_seq_length
        self.pooling = layout.pooling
        self.normalize = layout.normalize
        self.spec = EmbeddingSpec(canonical_model_name(model), backend, self.dim)
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()

    def embed(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._lock:  # one inference at a time keeps memory flat under concurrency
            # longest first, as sentence-transformers does: batches of like lengths pad least
            order = np.argsort([-len(t) for t in texts], kind="stable")
            for start in range(0, len(texts), self.batch_size):
                batch = [texts[i] for i in order[start : start + self.batch_size]]
                out.append(self._embed_batch(batch))
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        vectors[order] = np.vstack(out)
        return vectors

    def _embed_batch(self, texts: list[str]) -> Matrix:
        encoded = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np"
        )
        feeds = {name: np.asarray(encoded[name], dtype=np.int64) for name in self._inputs}
        hidden = self._session.run(None, feeds)[0]
        mask = np.asarray(encoded["attention_mask"], dtype=np.float32)[..., None]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        if self.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return np.asarray(pooled, dtype=np.float32)

    def embed_query(self, text: str) -> Matrix:
        return tag(self.embed([text])[0], self.spec)

    def count_tokens(self, text: str) -> int:
        with self._count_lock:
            return len(self._count_tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        with self._count_lock:
            encoded = self._count_tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


class _Layout:
    """What the sentence-transformers configuration says beyond the transformer: pooling, width,
    normalisation, sequence length. Only the layouts this module reproduces are accepted."""

    def __init__(self, source: Path) -> None:
        modules = json.loads((source / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or not set(kinds[2:]) <= {"Normalize"}:
            raise ModelUnavailable(f"an ONNX export of a model made of {kinds} is not supported")
        pooling = json.loads((source / modules[1]["path"] / "config.json").read_text())
        if pooling.get("pooling_mode_mean_tokens"):
            self.pooling = "mean"
        elif pooling.get("pooling_mode_cls_token"):
            self.pooling = "cls"
        else:
            raise ModelUnavailable("an ONNX export supports mean or CLS pooling only")
        self.dim = int(pooling["word_embedding_dimension"])
        self.normalize = "Normalize" in kinds
        config = json.loads((source / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(config.get("max_seq_length") or 512)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_hash(source: Path) -> str:
    """The model's content: every file of the transformer and its tokenizer (not sub-modules)."""
    digest = hashlib.sha256(f"export-{EXPORT_REVISION}".encode())
    for path in sorted(p for p in source.iterdir() if p.is_file() and p.suffix != ".md"):
        digest.update(path.name.encode() + b"\0" + _sha256(path).encode())
    return digest.hexdigest()[:24]


def prepared_model(source: Path, exports: Path, *, quantised: bool) -> Path:
    """The verified ONNX file for ``source`` (exported and quantised now if missing or corrupt)."""
    folder = exports / model_hash(source)
    name = "model-int8.onnx" if quantised else "model.onnx"
    if _verified(folder, name):
        return folder / name
    log_event(log, "exporting the embedding model to ONNX", model=str(source), file=name)
    exports.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=exports))
    try:
        _export(source, building / "model.onnx")
        files = {"model.onnx": _sha256(building / "model.onnx")}
        if quantised:
            _quantise(building / "model.onnx", building / "model-int8.onnx")
            files["model-int8.onnx"] = _sha256(building / "model-int8.onnx")
        (building / "manifest.json").write_text(json.dumps({"source": str(source), "files": files}))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(building, folder)  # whole or not at all: another process may be reading
    finally:
        shutil.rmtree(building, ignore_errors=True)
    if not _verified(folder, name):
        raise ModelUnavailable(f"the ONNX export of {source} could not be verified")
    return folder / name


def _verified(folder: Path, name: str) -> bool:
    try:
        manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
        expected = manifest["files"][name]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (folder / name).is_file() and _sha256(folder / name) == expected


def _export(source: Path, dest: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state  # type: ignore[no-any-return]

    sample = tokenizer(
        ["an example sentence", "a second, longer example sentence"], padding=True, return_tensors="pt"
    )
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on branches that are constant here
        torch.onnx.export(
            LastHiddenState(),
            tuple(sample[n] for n in names),
            str(dest),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _quantise(fp32: Path, dest: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(dest), per_channel=True, weight_type=QuantType.QInt8)


__all__ = ["EXPORT_REVISION", "OnnxEmbedder", "model_hash", "prepared_model"]
