"""Groundedness proxy: the share of answer sentences that a cited source supports.

Support is lexical entailment by overlap: a sentence is supported when at least ``threshold`` of
its content words appear in one cited source and every number it states appears there too (a
changed figure is the commonest unsupported claim). It is a proxy, cheap and deterministic; an
LLM judge can replace it, and ``judge_agreement`` says how far the two agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rag.citations import CITATION_MARKER

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+", re.UNICODE)
_STOPWORD_TEXT = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it its "
    "this that these those there their they them he she his her we our you your i not no do does did "
    "has have had will would can could should may might must shall than then so such which who whom "
    "whose what when where why how all any both each few more most other some into over under about "
    "also only very just per"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def content_tokens(text: str) -> list[str]:
    """Lower-cased words and numbers, without stopwords, citation marks or thousands separators."""
    text = CITATION_MARKER.sub(" ", text)
    tokens = (t.replace(",", "") for t in _TOKEN.findall(text.lower()))
    return [t for t in tokens if t not in _STOPWORDS]


def sentence_support(sentence: str, source: str) -> float:
    """Share of the sentence's content tokens found in the source; 0 if a number is missing."""
    tokens = content_tokens(sentence)
    if not tokens:
        return 1.0
    vocabulary = set(content_tokens(source))
    if any(t[0].isdigit() and t not in vocabulary for t in tokens):
        return 0.0
    return sum(t in vocabulary for t in tokens) / len(tokens)


def groundedness(sentences: Sequence[str], sources: Sequence[str], *, threshold: float = 0.6) -> float | None:
    """Share of sentences (those with content words) supported by at least one source."""
    judged = [s for s in sentences if content_tokens(s)]
    if not judged:
        return None
    supported = sum(any(sentence_support(s, src) >= threshold for src in sources) for s in judged)
    return supported / len(judged)


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """Sentences of an answer (pysbd handles abbreviations and decimals)."""
    return [s.strip() for s in _segmenter().segment(text) if s.strip()]


def judge_agreement(
    proxy: Sequence[float], judge: Sequence[float], *, threshold: float = 0.5
) -> float | None:
    """Share of answers on which proxy and judge agree about being grounded (score >= threshold)."""
    if len(proxy) != len(judge):
        raise ValueError("proxy and judge must be the same length")
    if not proxy:
        return None
    return sum((p >= threshold) == (j >= threshold) for p, j in zip(proxy, judge, strict=True)) / len(proxy)


# --------------------------------------------------------------------------- LLM judge (optional)

JUDGE_PROMPT_VERSION = "groundedness-judge/1"
JUDGE_SYSTEM = (
    "You check whether statements are supported by sources. A statement is supported only if the "
    "sources state it or directly entail it; figures must match exactly. Reply with JSON only: "
    '{"supported": [true or false, one per statement, in order]}.'
)


def judge_prompt(sentences: Sequence[str], sources: Sequence[str]) -> tuple[str, str]:
    """The pinned (system, user) prompt for an LLM judge; call it at temperature 0."""
    numbered_sources = "\n\n".join(f"[{i}] {s}" for i, s in enumerate(sources, 1)) or "(no sources)"
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(sentences, 1))
    return JUDGE_SYSTEM, f"Sources:\n{numbered_sources}\n\nStatements:\n{numbered}"


def parse_judge(reply: str, n_sentences: int) -> float | None:
    """Share of statements the judge called supported; ``None`` if the reply is not the asked JSON."""
    start, end = reply.find("{"), reply.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        verdicts = json.loads(reply[start : end + 1]).get("supported")
    except (ValueError, AttributeError):
        return None
    if not isinstance(verdicts, list) or len(verdicts) != n_sentences or n_sentences == 0:
        return None
    if not all(isinstance(v, bool) for v in verdicts):
        return None
    return sum(verdicts) / n_sentences
