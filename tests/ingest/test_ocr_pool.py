"""OCR on several pages at once reads exactly what one page at a time reads, in page order,
and the first pages go out before the look-ahead is full."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

from eval.bench.ocr_pool import scanned_pages_pdf
from ingest.loaders.ocr import in_order, ramp
from rag.settings import Settings
from tests.ingest.conftest import read_all


def test_the_pool_reads_the_same_text_as_one_process(
    datasets: Path, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    pdf = scanned_pages_pdf(datasets, 5, tmp_path / "scanned.pdf")
    _, one = read_all(pdf, make_settings(ocr_workers=1))
    _, pool = read_all(pdf, make_settings(ocr_workers=3))
    assert [p.page_no for p in pool] == [1, 2, 3, 4, 5]
    assert all(p.source == "ocr" for p in pool)
    assert pool == one


def test_pages_go_out_in_order_with_a_look_ahead_that_grows_to_its_limit() -> None:
    """The first page goes out once two are started (the pool has work beside it), then the
    look-ahead doubles up to ``ahead``: a filing's first chunks are cut after a few pages."""
    pulled: list[int] = []

    def pending() -> Iterator[Callable[[], int]]:
        for n in range(20):
            pulled.append(n)
            yield lambda n=n: n  # type: ignore[misc]

    given = []
    started_when_given = []
    for page in in_order(pending(), 8):
        given.append(page)
        started_when_given.append(len(pulled))
    assert given == list(range(20))
    assert started_when_given[:5] == [2, 4, 7, 12, 13]  # look-ahead 1, 2, 4, 8, 8...
    assert all(s - g <= 9 for g, s in enumerate(started_when_given))
    assert list(itertools.islice(ramp(8), 6)) == [1, 2, 4, 8, 8, 8]
    assert list(itertools.islice(ramp(3), 4)) == [1, 2, 3, 3]
