"""``rag doctor`` says which model and backend embed, and where the loaded file is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RAG = Path(sys.executable).with_name("rag")


def test_doctor_names_the_backend_and_its_export(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env |= {
        "RAG_DATA_DIR": str(tmp_path / "var"),
        "RAG_EMBEDDING_BACKEND": "onnx-int8",
        "RAG_RERANKER": "none",
    }
    done = subprocess.run(
        [str(RAG), "doctor", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    report = json.loads(done.stdout)
    embedder = report["embedder"]
    assert embedder["ok"] and embedder["backend"] == "onnx-int8" and embedder["dim"] == 384
    export = Path(embedder["path"])
    assert export.name == "model-int8.onnx" and export.is_relative_to(tmp_path / "var" / "models" / "onnx")
    assert (export.parent / "manifest.json").is_file()
