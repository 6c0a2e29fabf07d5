"""Answer metrics: SQuAD exact match and token F1, numeric match, abstention scores.

EM and F1 follow the official SQuAD 2.0 evaluation script: lower-case, strip punctuation and
the articles a/an/the, collapse whitespace; the best score over the gold answers counts; an
unanswerable question (no gold answers) scores 1 only for an empty prediction, and an
abstention is scored as the empty prediction.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def _golds(answers: Sequence[str]) -> list[str]:
    # as the official script: gold answers that normalise to nothing do not count
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def exact_match(prediction: str, answers: Sequence[str], *, abstained: bool = False) -> float:
    pred = "" if abstained else prediction
    return max(float(normalize_answer(pred) == normalize_answer(gold)) for gold in _golds(answers))


def _f1(pred_toks: list[str], gold_toks: list[str]) -> float:
    if not pred_toks or not gold_toks:
        return float(pred_toks == gold_toks)
    same = sum((Counter(pred_toks) & Counter(gold_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str], *, abstained: bool = False) -> float:
    pred_toks = _tokens("" if abstained else prediction)
    return max(_f1(pred_toks, _tokens(gold)) for gold in _golds(answers))


# --------------------------------------------------------------------------- numbers

_UNITS = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "mm": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<open>\()?\s*(?P<sign>[-−–])?\s*(?P<cur>[$€£¥])?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:(?P<suffix>bn|mn|tn|[kKmMbB])\b|\s*(?P<pct>%|percent\b|per\s+cent\b)"
    r"|\s+(?P<unit>thousand|million|billion|trillion|bn|mn|tn)\b)?"
    r"(?P<close>\s*\))?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    """A number found in text: ``value`` has units applied, ``raw`` is as written."""

    value: float
    raw: float
    decimals: int
    percent: bool
    is_year: bool


def parse_numbers(text: str) -> list[ParsedNumber]:
    """Numbers with currency, thousands separators, %, scale words and (parenthesised) negatives."""
    found = []
    for m in _NUMBER.finditer(text):
        digits = m.group("num").replace(",", "")
        raw = float(digits)
        decimals = len(digits.partition(".")[2])
        negative = bool(m.group("sign")) or bool(m.group("open") and m.group("close"))
        unit = (m.group("suffix") or m.group("unit") or "").lower()
        scale = _UNITS.get(unit, 1.0)
        plain = not (m.group("cur") or unit or m.group("pct") or "," in m.group("num"))
        is_year = plain and decimals == 0 and 1900 <= raw <= 2100
        sign = -1.0 if negative else 1.0
        found.append(ParsedNumber(sign * raw * scale, sign * raw, decimals, bool(m.group("pct")), is_year))
    return found


def _variants(n: ParsedNumber) -> list[tuple[float, float]]:
    """(value, scale of that rendering): with and without units, and a percent as a fraction."""
    scale = n.value / n.raw if n.raw else 1.0
    out = [(n.value, scale), (n.raw, 1.0)]
    if n.percent:
        out.append((n.raw / 100.0, 0.01))
    return out


def numbers_match(
    pred: ParsedNumber, gold: ParsedNumber, *, rel_tol: float = 0.01, ignore_sign: bool = True
) -> bool:
    """Equal up to rounding: within half a unit of the coarser written precision of the two,
    but never more than ``rel_tol`` of the gold ("1.58 billion" matches 1,577 million; "1.6
    billion", 1.5% off, does not; 8.74 does not match 8.70).
    """
    for g, g_scale in _variants(gold):
        for p, p_scale in _variants(pred):
            rounding = (
                max(10.0 ** (-pred.decimals) * abs(p_scale), 10.0 ** (-gold.decimals) * abs(g_scale)) / 2
            )
            tol = min(rounding, rel_tol * abs(g))
            a, b = (abs(p), abs(g)) if ignore_sign else (p, g)
            if math.isclose(a, b, abs_tol=tol, rel_tol=1e-9):
                return True
    return False


def numeric_match(
    prediction: str, answers: Sequence[str], *, rel_tol: float = 0.01, ignore_sign: bool = True
) -> float | None:
    """1.0 when every number of some gold answer (bare years aside) appears in the prediction.

    ``None`` when no gold answer holds a number: the question is not numeric. Units may be
    omitted ("1,577" matches "$1,577 million", as tables state units once) and the sign is
    ignored by default, since "a decrease of 3%" and "-3%" say the same thing.
    """
    predicted = parse_numbers(prediction)
    judged = False
    for answer in answers:
        gold = [n for n in parse_numbers(answer) if not n.is_year]
        if not gold:
            continue
        judged = True
        if all(
            any(numbers_match(p, g, rel_tol=rel_tol, ignore_sign=ignore_sign) for p in predicted)
            for g in gold
        ):
            return 1.0
    return 0.0 if judged else None


# --------------------------------------------------------------------------- abstention


@dataclass(frozen=True, slots=True)
class PRF:
    precision: float | None
    recall: float | None
    f1: float | None


def prf(tp: int, fp: int, fn: int) -> PRF:
    """Precision, recall, F1; a ratio with nothing to count is ``None`` (F1 is 0 if either is 0)."""
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None and recall is None:
        return PRF(None, None, None)
    if recall is None:
        return PRF(precision, None, None)
    p = precision or 0.0
    f1 = 2 * p * recall / (p + recall) if p + recall else 0.0
    return PRF(precision if precision is not None else 0.0, recall, f1)


def abstention_scores(unanswerable: Sequence[bool], abstained: Sequence[bool]) -> PRF:
    """Positive class: the question is unanswerable / the system abstained.

    With no unanswerable questions recall and F1 are ``None``; with unanswerable questions but
    no abstentions precision is 0 (nothing right was said), as scikit-learn's zero_division=0.
    """
    if len(unanswerable) != len(abstained):
        raise ValueError("unanswerable and abstained must be the same length")
    tp = sum(1 for u, a in zip(unanswerable, abstained, strict=True) if u and a)
    fp = sum(1 for u, a in zip(unanswerable, abstained, strict=True) if a and not u)
    fn = sum(1 for u, a in zip(unanswerable, abstained, strict=True) if u and not a)
    return prf(tp, fp, fn)
