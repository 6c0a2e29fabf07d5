"""Word boxes: storage round trip, highlight lines, table-rewrite remapping, page rotation."""

from __future__ import annotations

import pytest

from rag.layout import PageLayout, rotate_rect
from rag.types import PageRecord

WORDS = [  # "Net sales grew\nCash 12"
    (0, 3, (0.10, 0.10, 0.15, 0.12)),
    (4, 9, (0.16, 0.10, 0.25, 0.12)),
    (10, 14, (0.26, 0.10, 0.33, 0.12)),
    (15, 19, (0.10, 0.14, 0.16, 0.16)),
    (20, 22, (0.50, 0.14, 0.53, 0.16)),
]


def layout() -> PageLayout:
    return PageLayout.from_words(612, 792, WORDS)


def test_blobs_round_trip_within_the_stored_precision() -> None:
    original = layout()
    back = PageLayout.from_blobs(612, 792, *original.to_blobs())
    assert len(back) == 5 and (back.width, back.height) == (612, 792)
    for (s1, e1, r1), (s2, e2, r2) in zip(original.words(), back.words(), strict=True):
        assert (s1, e1) == (s2, e2)
        assert r1 == pytest.approx(r2, abs=1e-4)


def test_highlight_is_one_rectangle_per_line_of_the_overlapping_words() -> None:
    rects = layout().highlight(5, 21)  # from inside "sales" to inside "12"
    assert rects == [
        pytest.approx((0.16, 0.10, 0.33, 0.12), abs=1e-4),
        pytest.approx((0.10, 0.14, 0.53, 0.16), abs=1e-4),
    ]
    assert layout().highlight(14, 15) == []  # the line break alone covers no word


def test_words_inside_a_rewritten_span_take_the_whole_new_span_and_later_words_shift() -> None:
    # "Cash 12" (15..22) rewritten as "Cash: 2018: 12 (Millions)" (15..40); text before it unchanged
    moved = layout().remapped([(15, 22, 15, 40)])
    spans = [(s, e) for s, e, _ in moved.words()]
    assert spans == [(0, 3), (4, 9), (10, 14), (15, 40), (15, 40)]
    later = PageLayout.from_words(1, 1, [*WORDS, (23, 27, (0.1, 0.2, 0.2, 0.22))]).remapped(
        [(15, 22, 15, 40)]
    )
    assert [(s, e) for s, e, _ in later.words()][-1] == (41, 45)


@pytest.mark.parametrize(
    ("turn", "expected"),
    [
        (0, (0.1, 0.2, 0.3, 0.4)),
        (90, (0.6, 0.1, 0.8, 0.3)),
        (180, (0.7, 0.6, 0.9, 0.8)),
        (270, (0.2, 0.7, 0.4, 0.9)),
    ],
)
def test_rotation_turns_the_box_with_the_page(turn: int, expected: tuple[float, ...]) -> None:
    assert rotate_rect((0.1, 0.2, 0.3, 0.4), turn) == pytest.approx(expected)
    # four quarter turns come back
    rect = (0.1, 0.2, 0.3, 0.4)
    for _ in range(4):
        rect = rotate_rect(rect, 90)
    assert rect == pytest.approx((0.1, 0.2, 0.3, 0.4))


def test_a_page_record_clips_document_offsets_to_its_own_text() -> None:
    page = PageRecord(page_no=2, text_offset=100, text="x" * 50, source="text-layer")
    assert page.span(90, 110) == (0, 10)
    assert page.span(140, 400) == (40, 50)
    assert page.span(0, 100) is None and page.span(150, 160) is None
