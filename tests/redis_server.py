"""A real ``redis-server`` on 127.0.0.1 for the tests that need one (cache, rate limits).

The process is ``deploy.engines.RedisServer``, the one the local cluster runs (a free port,
``--save '' --appendonly no``, ready once it answers PING), so the tests meet the same server.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.engines import RedisServer

MISSING = "redis-server is not installed: run scripts/system-deps.sh (CI installs it)"


@contextlib.contextmanager
def running_redis(port: int | None = None) -> Iterator[RedisServer]:
    """A fresh server in a temporary directory, stopped and removed on exit. Without the binary
    the test fails (as the PostgreSQL and Chromium ones do): a skip would hide that it never ran."""
    if shutil.which("redis-server") is None:
        pytest.fail(MISSING)
    with tempfile.TemporaryDirectory(prefix="rag-redis-") as root:
        server = RedisServer(Path(root), port=port).start()
        try:
            yield server
        finally:
            server.stop()


__all__ = ["MISSING", "RedisServer", "running_redis"]
