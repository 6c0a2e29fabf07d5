"""The tests' fake LLM provider, for benchmarks and experiments that need a provider at the wire.

It is a source checkout's file, loaded by path: ``eval`` imports nothing from ``tests``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

FAKE_SERVER = Path(__file__).resolve().parents[1] / "tests" / "fakes" / "llm_server.py"


def fake_llm_server() -> ModuleType:
    """``tests/fakes/llm_server.py`` as a module (its ``FakeLLMServer`` and helpers)."""
    if not FAKE_SERVER.exists():
        raise FileNotFoundError(f"the fake LLM server is not at {FAKE_SERVER} (run from a source checkout)")
    spec = importlib.util.spec_from_file_location("rag_eval_fake_llm_server", FAKE_SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


__all__ = ["FAKE_SERVER", "fake_llm_server"]
