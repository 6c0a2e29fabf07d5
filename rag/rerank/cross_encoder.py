"""A local cross-encoder through sentence-transformers, by hub name or local path."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from rag.errors import ModelUnavailable, RerankerUnavailable
from rag.models import resolve_model

Backend = Literal["torch", "onnx"]


@lru_cache(maxsize=2)
def _load_cross_encoder(loadable: str, backend: str, device: str) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(loadable, device=device, backend=backend)


def reranker_name(model: str, backend: str = "torch") -> str:
    return f"cross-encoder:{model}" + (f" ({backend})" if backend != "torch" else "")


def _why(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{exc.__class__.__name__}: {first}"[:240]


class CrossEncoderReranker:
    """Reads query and passage together, which the bi-encoder cannot; costs a forward pass each."""

    available = True
    reason: str | None = None

    def __init__(
        self, model: str, *, backend: Backend = "torch", device: str = "cpu", batch_size: int = 32
    ) -> None:
        self.model = model
        self.name = reranker_name(model, backend)
        self.loadable, self.origin = resolve_model(model)
        self.batch_size = batch_size
        try:
            self._model = _load_cross_encoder(self.loadable, backend, device)
        except ImportError as exc:
            hint = " (install sentence-transformers[onnx])" if backend == "onnx" else ""
            raise ModelUnavailable(
                f"cannot load {model!r} with backend {backend}: {_why(exc)}{hint}"
            ) from exc
        except Exception as exc:  # a missing or corrupt model surfaces as many exception types
            raise ModelUnavailable(f"cannot load {model!r} from {self.origin}: {_why(exc)}") from exc
        # one inference at a time keeps memory flat when requests arrive together
        self._lock = threading.Lock()

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        pairs = [(query, p) for p in passages]
        try:
            with self._lock:
                scores = self._model.predict(
                    pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
                )
        except Exception as exc:
            raise RerankerUnavailable(f"cross-encoder failed: {_why(exc)}") from exc
        return [float(s) for s in scores]
