"""One writer per data directory: embedded Chroma is not safe with several writing processes."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO

from rag.errors import DataDirLocked


class WriterLock:
    """An advisory ``flock`` held for the life of the process; released by the OS on death."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "writer.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            try:
                info = json.loads(holder)
                who = f"pid {info['pid']} on {info['host']} ({info['command']}) since {info['since']}"
            except (ValueError, KeyError):
                who = holder
            raise DataDirLocked(
                f"{self.path.parent} is being written by {who}; stop it or send your request to its HTTP API",
                holder=who,
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": " ".join(os.path.basename(a) for a in sys.argv[:2]) or "python",
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
        )
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None
