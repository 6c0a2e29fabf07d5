"""The ``embedding_backends`` bench section's arithmetic: medians, ratios and the README table.

The section itself takes minutes on real models (``python -m eval.bench --only
embedding_backends``); what it computes from its timings is checked here on made-up ones.
"""

from __future__ import annotations

from eval.bench.backends import _ingestion_rows, best_batches, markdown, raw_table

# seconds to embed 100 texts, three rounds, by backend and batch
SECONDS = {
    "torch": {1: [5.0, 4.0, 9.0], 32: [5.0, 6.0, 5.0]},
    "onnx": {1: [4.0, 4.0, 4.0], 32: [5.0, 5.0, 5.0]},
    "onnx-int8": {1: [2.0, 1.0, 2.0], 32: [4.0, 4.0, 4.0]},
}


def test_medians_and_ratios_to_torch() -> None:
    table = raw_table(SECONDS, texts=100, shipped=32)
    assert table["torch"]["1"]["texts_per_s"] == 20.0  # the median round, not the mean
    assert table["onnx-int8"]["1"] == {
        "texts_per_s": 50.0,
        "vs_torch_same_batch": 2.5,
        "vs_torch_shipped_batch": 2.5,  # torch at 32: 100 / 5 s
        "vs_torch_best_batch": 2.5,
    }
    assert table["onnx-int8"]["32"]["vs_torch_same_batch"] == 1.25
    assert best_batches(table) == {"torch": 1, "onnx": 1, "onnx-int8": 1}


def test_the_markdown_tables() -> None:
    raw = raw_table(SECONDS, texts=100, shipped=32)
    rounds = {  # (ingestion, the same texts embedded directly) per round
        "torch": [(10.0, 5.0)],
        "onnx": [(8.0, 5.0)],
        "onnx-int8": [(5.0, 4.5), (6.0, 4.5), (4.0, 3.8)],
    }
    rows = _ingestion_rows(rounds, raw, 100, 32, {"onnx": 1.5, "onnx-int8": 2.0})
    assert rows["onnx-int8"]["ingest_vs_torch"] == 2.0 and rows["torch"]["ingest_vs_raw"] == 0.5
    assert rows["onnx-int8"]["ingest_vs_raw"] == 0.9  # the median of 0.9, 0.75, 0.95
    assert rows["onnx-int8"]["ingest_vs_raw_table"] == 0.8  # 20 chunks/s against 25 texts/s
    text = markdown(
        {
            "raw": raw,
            "backends": rows,
            "shipped_batch": 32,
            "chunks": 100,
            "document": "filing.pdf",
            "mean_tokens": 150,
            "threads": 1,
            "rounds": {"ingestion": 1, "raw": 3},
        }
    )
    assert "| onnx-int8 | 50.0 (x2.50, x2.50) | 25.0 (x1.25, x1.25) |" in text
    assert "| onnx-int8 | 20.0 | 2.00 | 0.90 (0.80) | 2.0 s |" in text
