"""Answer metrics against values worked out by hand and the official SQuAD script's behaviour."""

from __future__ import annotations

import pytest

from eval.metrics import answers as am


def test_squad_normalisation() -> None:
    assert am.normalize_answer("The  Norman-Conquest, of  an England!") == "normanconquest of england"


def test_exact_match_takes_the_best_gold() -> None:
    assert am.exact_match("the France", ["Paris", "France"]) == 1.0
    assert am.exact_match("in France", ["France"]) == 0.0


def test_token_f1_by_hand() -> None:
    # pred tokens: [denver, broncos, won]; gold: [denver, broncos]: P = 2/3, R = 1, F1 = 0.8
    assert am.token_f1("Denver Broncos won", ["The Denver Broncos"]) == pytest.approx(0.8)
    # best of two golds: [carolina, panthers] shares nothing, so 0.8 wins
    assert am.token_f1("Denver Broncos won", ["Carolina Panthers", "Denver Broncos"]) == pytest.approx(0.8)
    # repeated tokens count once per occurrence: pred [a1 a1 b] vs gold [a1 b b]: common 2 -> P=R=2/3
    assert am.token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)


def test_unanswerable_scores_only_an_abstention() -> None:
    assert am.exact_match("", []) == 1.0
    assert am.token_f1("anything at all", [], abstained=True) == 1.0
    assert am.token_f1("a guess", []) == 0.0
    assert am.exact_match("France", ["France"], abstained=True) == 0.0


def test_gold_answers_that_normalise_to_nothing_are_ignored() -> None:
    # as the official script: ["the"] normalises to "", so the question counts as unanswerable
    assert am.exact_match("", ["the"]) == 1.0


def test_parse_numbers_handles_financial_notation() -> None:
    values = [n.value for n in am.parse_numbers("$1,577 million, (2.5) and 12.5% of $3.2B in FY2022")]
    assert values == [1.577e9, -2.5, 12.5, 3.2e9]  # "FY2022" is a label, not a figure
    assert [n.is_year for n in am.parse_numbers("in 2022 and 2,022")] == [True, False]


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("Capex was $1,577 million.", "$1577.00", 1.0),  # units omitted in the gold
        ("It was 1.577 billion dollars", "$1,577 million", 1.0),  # scale words
        ("about $1.58 billion", "$1,577 million", 1.0),  # rounded as written, within 1%
        ("about $1.6 billion", "$1,577 million", 0.0),  # a rounding 1.5% off is beyond the 1% cap
        ("a ratio of 0.69", "0.6923", 1.0),  # rounded to the prediction's two decimals
        ("a loss of (4.2)%", "-4.2%", 1.0),  # parenthesised negative
        ("a decline of 4.2%", "-4.2%", 1.0),  # sign ignored by default
        ("0.654", "65.4%", 1.0),  # a percentage as a fraction
        (
            "from 0.67 to 0.69 in FY2023",
            "improved from 0.67 times to 0.69 times between FY 2023 and FY 2022",
            1.0,
        ),
        ("0.69", "improved from 0.67 times to 0.69 times", 0.0),  # every gold number is required
        ("$8.70", "$8.70", 1.0),
        ("$8.74", "$8.70", 0.0),  # within 1% but not a rounding of the written cents
    ],
)
def test_numeric_match(prediction: str, gold: str, expected: float) -> None:
    assert am.numeric_match(prediction, [gold]) == expected


def test_numeric_match_is_none_for_non_numeric_gold() -> None:
    assert am.numeric_match("42", ["Amcor is a packaging company."]) is None
    assert am.numeric_match("42", ["It happened in 2019."]) is None  # a bare year is not a figure


def test_abstention_scores_by_hand() -> None:
    # gold unanswerable: T T F F; abstained: T F T F -> tp 1, fp 1, fn 1
    score = am.abstention_scores([True, True, False, False], [True, False, True, False])
    assert (score.precision, score.recall, score.f1) == (0.5, 0.5, 0.5)


def test_abstention_edge_cases() -> None:
    none_abstained = am.abstention_scores([True, False], [False, False])
    assert (none_abstained.precision, none_abstained.recall, none_abstained.f1) == (0.0, 0.0, 0.0)
    nothing_unanswerable = am.abstention_scores([False, False], [True, False])
    assert (nothing_unanswerable.precision, nothing_unanswerable.recall, nothing_unanswerable.f1) == (
        0.0,
        None,
        None,
    )
    assert am.abstention_scores([False], [False]).f1 is None
    with pytest.raises(ValueError):
        am.abstention_scores([True], [])
