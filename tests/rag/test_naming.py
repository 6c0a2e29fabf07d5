"""Which documents a question names: a weight per document, never a filter."""

from __future__ import annotations

from rag.naming import DocumentNames, describe_document
from rag.types import Document

FILINGS = {
    "3m-2018": "3M_2018_10K.pdf 3M COMPANY 10-K fiscal year ended December 31, 2018 2018",
    "3m-2022": "3M_2022_10K.pdf 3M COMPANY 10-K fiscal year ended December 31, 2022 2022",
    "amcor-8k": "AMCOR_2022_8K_dated-2022-07-01.pdf AMCOR PLC 8-K July 1, 2022",
    "amcor-10k": "AMCOR_2023_10K.pdf AMCOR PLC 10-K fiscal year ended June 30, 2023 2023",
    "bestbuy-2019": "BESTBUY_2019_10K.pdf Best Buy Co., Inc. 10-K fiscal year ended February 2, 2019 2019",
    "boeing-2018": "BOEING_2018_10K.pdf THE BOEING COMPANY 10-K fiscal year ended December 31, 2018 2018",
}


def test_the_named_company_and_year_rank_first() -> None:
    names = DocumentNames(FILINGS)
    weights = names.match("What is the FY2018 capital expenditure amount (in USD millions) for 3M?")
    assert max(weights, key=lambda d: weights[d]) == "3m-2018"
    assert weights["3m-2018"] == 1.0
    assert 0 < weights["3m-2022"] < 1.0  # the same filer, another year: favoured less
    assert "boeing-2018" not in weights  # the year alone names nothing


def test_possessives_and_form_types_are_read() -> None:
    weights = DocumentNames(FILINGS).match(
        "What was the key agenda of the AMCOR's 8k filing dated 1st July 2022?"
    )
    assert max(weights, key=lambda d: weights[d]) == "amcor-8k"


def test_a_question_that_names_nothing_favours_nothing() -> None:
    names = DocumentNames(FILINGS)
    assert names.match("What happened to capital expenditure in 2018?") == {}
    assert names.match("Which company had the largest inventories?") == {}


def test_a_word_every_document_shares_names_none_of_them() -> None:
    one = DocumentNames({"only": "Adobe Inc. 10-K fiscal 2022"})
    assert one.match("What was Adobe's revenue in 2022?") == {}


def test_a_document_is_described_by_its_name_title_and_profile() -> None:
    doc = Document(
        id="d1",
        name="report.pdf",
        collection="c",
        content_sha256="0" * 64,
        kind="pdf",
        size_bytes=1,
        metadata={
            "title": "Annual report",
            "profile_filer": "Best Buy Co., Inc.",
            "profile_fiscal_year": 2019,
        },
    )
    text = describe_document(doc)
    assert "report.pdf" in text and "Annual report" in text and "Best Buy" in text and "2019" in text
    names = DocumentNames({"d1": text, "d2": "Other Corp 10-K"})
    assert names.match("What were Best Buy's inventories in FY2019?") == {"d1": 1.0}
