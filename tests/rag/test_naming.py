"""Which documents a question names: a weight per document, never a filter."""

from __future__ import annotations

from rag.naming import Description, DocumentNames, describe_document
from rag.types import Document

FILINGS = {
    "3m-2018": Description("3M_2018_10K.pdf 10-K fiscal year ended December 31, 2018 2018", "3M COMPANY"),
    "3m-2022": Description("3M_2022_10K.pdf 10-K fiscal year ended December 31, 2022 2022", "3M COMPANY"),
    "amcor-8k": Description("AMCOR_2022_8K_dated-2022-07-01.pdf 8-K July 1, 2022", "AMCOR PLC"),
    "amcor-10k": Description("AMCOR_2023_10K.pdf 10-K fiscal year ended June 30, 2023 2023", "AMCOR PLC"),
    "bestbuy-2019": Description(
        "BESTBUY_2019_10K.pdf 10-K fiscal year ended February 2, 2019 2019", "Best Buy Co., Inc."
    ),
    "boeing-2018": Description(
        "BOEING_2018_10K.pdf 10-K fiscal year ended December 31, 2018 2018", "THE BOEING COMPANY"
    ),
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
    one = DocumentNames({"only": Description("10-K fiscal 2022", "Adobe Inc.")})
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
    described = describe_document(doc)
    text = described.text
    assert "report.pdf" in text and "Annual report" in text and "Best Buy" in text and "2019" in text
    assert described.filer == "Best Buy Co., Inc."
    names = DocumentNames({"d1": described, "d2": Description("Other Corp 10-K", "Other Corp")})
    assert names.match("What were Best Buy's inventories in FY2019?") == {"d1": 1.0}


def test_a_title_names_a_document_at_a_quarter_of_a_filers_weight() -> None:
    # Wikipedia paragraphs: "French" in a question about the Huguenots names another article
    names = DocumentNames(
        {
            "war": Description("french-and-indian-war-p018.txt French and Indian War"),
            "huguenot": Description("huguenot-p016.txt Huguenot"),
            "normans": Description("normans-p006.txt Normans"),
        }
    )
    assert names.match("The French church in Portarlington was built when?") == {"war": 0.25}
    filings = DocumentNames({**FILINGS, "memo": Description("boeing-memo.txt Boeing supplier memo")})
    weights = filings.match("What was Boeing's FY2018 net PP&E?")
    assert weights["boeing-2018"] == 1.0 and weights["memo"] <= 0.25


QUARTERLIES = {
    "aapl-2022q3": Description("2022 Q3 AAPL.pdf 10-Q quarterly period ended June 25, 2022", "Apple Inc."),
    "aapl-2023q1": Description(
        "2023 Q1 AAPL.pdf 10-Q quarterly period ended December 31, 2022", "Apple Inc."
    ),
    "aapl-2023q3": Description("2023 Q3 AAPL.pdf 10-Q quarterly period ended July 1, 2023", "Apple Inc."),
    "aapl-2023": Description(
        "AAPL_2023_10K.pdf 10-K fiscal year ended September 30, 2023 2023", "Apple Inc."
    ),
    "msft-2023q3": Description("2023 Q3 MSFT.pdf 10-Q", "Microsoft Corporation"),
    "amzn-2023q3": Description("2023 Q3 AMZN.pdf 10-Q", "Amazon.com, Inc."),
    "intc-2023q3": Description("2023 Q3 INTC.pdf 10-Q", "Intel Corporation"),
    "nvda-2023q3": Description("2023 Q3 NVDA.pdf 10-Q", "NVIDIA Corporation"),
}


def test_the_named_quarter_ranks_its_filing_first() -> None:
    names = DocumentNames(QUARTERLIES)
    for question in (
        "What percentage of Apple's revenue did Services contribute in Q3 2023?",
        "What did Apple report in Q32023?",
        "What did Apple report in its third quarter of 2023?",
        "As of Q3'2023, what were Apple's inventories?",
    ):
        weights = names.match(question)
        assert max(weights, key=lambda d: weights[d]) == "aapl-2023q3", question
        assert weights["aapl-2023q3"] > weights["aapl-2023"] > 0, question
        assert "msft-2023q3" not in weights  # the quarter alone names nothing


def test_a_period_alone_names_nothing() -> None:
    names = DocumentNames(
        {**QUARTERLIES, "amcor": Description("AMCOR_2023Q2_10Q.pdf Amcor 4Q 2023", "Amcor")}
    )
    assert names.match("What changed in 2023Q2 and 4Q?") == {}
