"""The reader-to-embedder hand-over: every chunk once, in order, in batches the embedder can use."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ingest.pipeline import _produce_batches
from rag.types import Chunk, chunk_id


def _chunks(n: int, delay_s: float = 0.0) -> Iterator[Chunk]:
    for i in range(n):
        if delay_s:
            time.sleep(delay_s)
        yield Chunk(chunk_id("d", i), "d", i, f"text {i}", 1, 1, 0, 6, 2)


def test_every_chunk_once_in_order_within_the_batch_bounds() -> None:
    stopped = threading.Event()
    batches = list(_produce_batches(_chunks(203), 64, at_least=4, on_stop=stopped.set))
    assert [c.ordinal for b in batches for c in b] == list(range(203))
    assert all(len(b) <= 64 for b in batches)
    assert len(batches[0]) >= 1
    assert all(len(b) >= 4 for b in batches[1:-1])
    assert stopped.is_set()


def test_a_slow_reader_hands_over_the_first_chunks_without_waiting_for_a_full_batch() -> None:
    """The embedder gets its first work with the first chunk, not after 64; then ``at_least``."""
    started = time.perf_counter()
    batches = _produce_batches(_chunks(100, delay_s=0.01), 64, at_least=4, on_stop=lambda: None)
    first = next(batches)
    waited = time.perf_counter() - started
    assert 1 <= len(first) < 4
    assert waited < 0.3  # 64 chunks would take 0.64 s at this reader's pace
    rest = list(batches)
    assert all(len(b) >= 4 for b in rest[:-1])
    assert [c.ordinal for c in first] + [c.ordinal for b in rest for c in b] == list(range(100))


def test_a_reader_error_reaches_the_consumer() -> None:
    def failing() -> Iterator[Chunk]:
        yield from _chunks(10)
        raise ValueError("unreadable page")

    with pytest.raises(ValueError, match="unreadable page"):
        list(_produce_batches(failing(), 64, at_least=4, on_stop=lambda: None))


def test_a_consumer_that_gives_up_stops_the_reader() -> None:
    stopped = threading.Event()
    before = set(threading.enumerate())
    batches = _produce_batches(_chunks(100_000), 8, at_least=4, on_stop=stopped.set)
    next(batches)
    (reader,) = [t for t in threading.enumerate() if t not in before and t.name == "ingest-reader"]
    batches.close()
    assert stopped.is_set()
    assert not reader.is_alive()
