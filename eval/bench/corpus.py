"""Synthetic-but-real corpora for scale benchmarks: chunks assembled from real sentences."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path


def real_sentences_and_questions(datasets: Path) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    questions: list[str] = []
    for rel in ("squad2_dev_cs224n_half/dev-v2.0.json", "covidqa_deepset_200423/200423_covidQA.json"):
        data = json.loads((datasets / rel).read_text())
        for article in data["data"]:
            for para in article["paragraphs"]:
                texts.append(para["context"])
                questions.extend(q["question"] for q in para["qas"])
    sentences = [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s) > 20]
    return sentences, questions


def synthetic_chunks(sentences: list[str], n: int, per_chunk: int = 8, seed: int = 0) -> list[str]:
    """``n`` chunks of about 200 tokens, each a random draw of real sentences."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(sentences, k=per_chunk)) for _ in range(n)]
