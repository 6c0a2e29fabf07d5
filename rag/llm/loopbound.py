"""Async clients (httpx, redis) belong to the event loop that created them; keep one per loop.

The CLI and the evaluation runner may call the gateway under several ``asyncio.run`` calls in
one process; reusing a client from a closed loop fails in confusing ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._value: T | None = None

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._value is None or self._loop is not loop:
            self._value = self._factory()
            self._loop = loop
        return self._value

    def current(self) -> T | None:
        """The client of the running loop if one was made (for closing), else None."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._value if self._loop is loop else None

    def forget(self) -> None:
        self._value = None
        self._loop = None
