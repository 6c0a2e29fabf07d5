"""Reading a document in a child process whose memory and time are bounded and enforced.

Parsers are where a hostile file hurts: a one-page PDF with a 200 MB content stream held the
worker for 215 s at 4.2 GB (PDFium, under its global lock), a .docx bomb for minutes. Python
cannot bound the memory or stop the C code of one thread, so each document is read by a child
process (``python -m ingest.isolation``) that limits itself before it imports a parser: an
address space of ``RAG_PARSE_MEMORY_MB`` (tesseract, which it starts, inherits it) and a CPU-time
limit per document, the backstop should this process die. This process enforces wall-clock
limits (``RAG_PARSE_PAGE_TIMEOUT_S`` per page, ``RAG_PARSE_TIMEOUT_S`` per document) and the
character budget, checks for cancellation while it waits, and kills the child at any limit: the
job fails with ``resource_limit`` and its memory goes with the child.

A child that ends a document cleanly and small is kept for the next one (its start, imports
included, costs 0.5-0.7 s); one that grew past ``KEEP_RSS_BYTES``, failed a limit or was
abandoned is killed. Frames are length-prefixed pickles: both ends are this module.
"""

from __future__ import annotations

import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ingest.budget import character_budget, check_characters
from ingest.loaders import LoadedDocument, load_document
from rag.errors import CorruptDocument, RagError, ResourceLimit, error_from_code
from rag.settings import Settings
from rag.types import Page

KEEP_RSS_BYTES = 400 * 1024 * 1024
"""A child whose resident memory after a document is above this is not reused."""
_HEADER = struct.Struct("!Q")
_EXIT_MEMORY = 3
"""The child's exit status when it ran out of memory and could not say so."""
_POLL_S = 0.25
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)

Heartbeat = Callable[[], None]
"""Called about every quarter second while waiting for the child; raising stops the read
(``JobCancelled`` from a job's progress report) and kills the child."""


# --- frames -----------------------------------------------------------------------


def _frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def _read_frame(stream: IO[bytes]) -> Any:
    """The next message on a blocking stream; ``None`` at its end (the child's side)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(length))


# --- the parent's side ------------------------------------------------------------------


class _Child:
    """One parser process and the bytes it has sent but nobody has read yet."""

    def __init__(self, settings: Settings) -> None:
        self.memory_bytes = settings.parse_memory_mb * 1024 * 1024
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [_PROJECT_ROOT, os.environ.get("PYTHONPATH")])),
            "MALLOC_ARENA_MAX": "2",  # glibc's per-thread arenas reserve address space by the 64 MB
            "OMP_THREAD_LIMIT": str(max(1, settings.ocr_thread_limit)),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.isolation", str(self.memory_bytes), str(settings.parse_niceness)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.fd = self.proc.stdout.fileno()
        self.buffer = bytearray()
        self.exit_status: int | None = None
        self.max_rss_bytes = 0
        self._reaping = threading.Lock()  # a reader thread and ``kill`` from another may race

    def send(self, message: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(_frame(message))
        self.proc.stdin.flush()

    def receive(self, timeout_s: float, max_bytes: int) -> tuple[Any, bool]:
        """``(message, True)``, or ``(None, False)`` when ``timeout_s`` passed first; raises at the
        child's death (``_died``) or a frame over ``max_bytes``."""
        deadline = time.monotonic() + timeout_s
        while True:
            if len(self.buffer) >= _HEADER.size:
                (length,) = _HEADER.unpack_from(self.buffer)
                if length > max_bytes:
                    self.kill()
                    raise ResourceLimit(f"a page of the document reads to more than {max_bytes:,} bytes")
                if len(self.buffer) >= _HEADER.size + length:
                    body = bytes(self.buffer[_HEADER.size : _HEADER.size + length])
                    del self.buffer[: _HEADER.size + length]
                    return pickle.loads(body), True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, False
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return None, False
            data = os.read(self.fd, 1 << 20)
            if not data:
                raise self._died()
            self.buffer.extend(data)

    def _died(self) -> RagError:
        """The error for a child that ended without saying why: out of memory, out of CPU time,
        or a parser that crashed."""
        self._reap()
        status = self.exit_status or 0
        mb = self.memory_bytes // (1024 * 1024)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == _EXIT_MEMORY:
            return _out_of_memory(mb)
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            if number == signal.SIGXCPU:
                return ResourceLimit("reading the document used up its CPU time", limit="time")
            if self.max_rss_bytes >= self.memory_bytes // 2:
                return _out_of_memory(mb)
            return CorruptDocument(f"the parser stopped on this document ({signal.Signals(number).name})")
        return CorruptDocument("the parser stopped on this document")

    def _reap(self) -> None:
        with self._reaping:
            if self.exit_status is not None:
                return
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.exit_status = status
            self.max_rss_bytes = usage.ru_maxrss * 1024
            self.proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen

    def kill(self) -> None:
        """Kill and reap; the pipes close with this object (a reader thread may still select on them)."""
        with self._reaping:
            if self.exit_status is None:
                self.proc.kill()
        self._reap()

    @property
    def alive(self) -> bool:
        return self.exit_status is None and self.proc.poll() is None


WARM_TIMEOUT_S = 30.0
"""How long a warming child may take to start and load the PDF reader before it is dropped."""


class ParserPool:
    """The parser children of one pipeline; idle ones are reused, at most one per caller at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[_Child] = []
        self._lock = threading.Lock()

    def load(self, path: Path, kind: str, *, heartbeat: Heartbeat | None = None) -> LoadedDocument:
        """Validate ``path`` and start reading it; ``pages`` of the result arrive as the child
        reads them. Raises what the loader raised (``rag.errors``) or ``ResourceLimit``."""
        if self.settings.parse_isolation == "inline":
            return _inline(path, kind, self.settings)
        return _Reading(self, path, kind, heartbeat or (lambda: None)).start()

    def warm(self) -> None:
        """Start a parser child with the PDF reader loaded and keep it idle for the first document,
        which then waits for neither (about half a second of a 57-page 10-Q's 7.5 s here). A child
        that fails to start is not an error: the first read starts its own."""
        if self.settings.parse_isolation == "inline":
            return
        child = _Child(self.settings)
        try:
            child.send(("warm",))
            message, answered = child.receive(WARM_TIMEOUT_S, 1 << 16)
        except (RagError, OSError):
            child.kill()
            return
        if not answered or not isinstance(message, tuple) or message[0] != "end":
            child.kill()
            return
        self._give_back(child, int(message[1]))

    def _take(self) -> tuple[_Child, bool]:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive:
                    return child, True
                child.kill()
        return _Child(self.settings), False

    def _give_back(self, child: _Child, rss_bytes: int) -> None:
        if rss_bytes > KEEP_RSS_BYTES or not child.alive:
            child.kill()
            return
        with self._lock:
            self._idle.append(child)

    def close(self) -> None:
        """Stop the idle children (a running read keeps its own until it ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()


class _Reading:
    """One document read by one child; ``close`` kills the child unless it finished cleanly."""

    def __init__(self, pool: ParserPool, path: Path, kind: str, heartbeat: Heartbeat) -> None:
        self.pool, self.path, self.requested_kind, self.heartbeat = pool, path, kind, heartbeat
        settings = pool.settings
        self.size_bytes = path.stat().st_size
        # a page's frame: its characters at four UTF-8 bytes each, plus headings and pickling
        self.max_frame = 4 * character_budget(self.size_bytes, settings) + (1 << 20)
        self.parse_left_s = settings.parse_timeout_s
        self.child: _Child | None = None

    def start(self) -> LoadedDocument:
        request = ("read", str(self.path), self.requested_kind, self.pool.settings)
        child, reused = self.pool._take()
        try:
            child.send(request)
        except (BrokenPipeError, OSError):
            child.kill()
            if not reused:
                raise
            child = _Child(self.pool.settings)  # an idle child that died meanwhile
            child.send(request)
        self.child = child
        try:
            _, kind, page_count, title = self._next()
        except BaseException:
            self.close()
            raise
        pages = _counted(self._pages(), self.size_bytes, self.pool.settings)
        return LoadedDocument(kind, page_count, title, pages, release=self.close)

    def _next(self) -> tuple[Any, ...]:
        """The child's next message; raises its errors, and ``ResourceLimit`` past a time limit."""
        child = self.child
        if child is None:
            raise ResourceLimit("the read was stopped")
        page_left_s = self.pool.settings.parse_page_timeout_s
        while True:
            self.heartbeat()
            if self.parse_left_s <= 0 or page_left_s <= 0:
                self.close()
                whole = self.parse_left_s <= 0
                seconds = (
                    self.pool.settings.parse_timeout_s if whole else self.pool.settings.parse_page_timeout_s
                )
                what = "the document" if whole else "one page"
                raise ResourceLimit(
                    f"reading {what} took longer than {seconds:g} s"
                    f" ({'RAG_PARSE_TIMEOUT_S' if whole else 'RAG_PARSE_PAGE_TIMEOUT_S'})",
                    limit="time",
                )
            waited = time.monotonic()
            message, arrived = child.receive(min(_POLL_S, self.parse_left_s, page_left_s), self.max_frame)
            spent = time.monotonic() - waited
            self.parse_left_s -= spent
            page_left_s -= spent
            if arrived:
                if message[0] == "error":
                    _, code, text, extra = message
                    self.child = None
                    if code == ResourceLimit.code:  # it may be out of memory: never reused
                        child.kill()
                    else:
                        self.pool._give_back(child, 0)
                    raise error_from_code(code, text, **extra)
                return tuple(message)

    def _pages(self) -> Iterator[Page]:
        """The pages as the child sends them (the child counts characters too, to stop early)."""
        while True:
            message = self._next()
            if message[0] == "end":
                child, self.child = self.child, None
                if child is not None:
                    self.pool._give_back(child, message[1])
                return
            yield message[1]

    def close(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.kill()


def _out_of_memory(memory_mb: int) -> ResourceLimit:
    return ResourceLimit(f"reading the document needs more than {memory_mb} MB of memory", limit="memory")


def _inline(path: Path, kind: str, settings: Settings) -> LoadedDocument:
    loaded = load_document(path, settings, kind=kind)
    loaded.pages = _counted(loaded.pages, path.stat().st_size, settings)
    return loaded


def _counted(pages: Iterator[Page], size_bytes: int, settings: Settings) -> Iterator[Page]:
    """``pages``, stopped with ``ResourceLimit`` once they pass the document's character budget."""
    read = 0
    for page in pages:
        read += len(page.text)
        check_characters(read, size_bytes, settings)
        yield page


# --- the child's side -------------------------------------------------------------------


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _limit_cpu(seconds: float) -> None:
    """This document may use ``seconds`` of CPU from now (SIGXCPU past it); the hard limit stays
    unlimited so the next document can be given its own budget."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    now = int(used.ru_utime + used.ru_stime)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (now + int(seconds) + 1, hard))


def _peak_address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _serve(requests: IO[bytes], replies: IO[bytes], memory_bytes: int) -> None:
    def send(message: object) -> None:
        replies.write(_frame(message))
        replies.flush()

    while True:
        request = _read_frame(requests)
        if request is None:  # the parent closed the pipe: done, or gone
            return
        if request[0] == "warm":  # load the PDF reader now, not when the first document arrives
            import ingest.loaders.pdf  # noqa: F401

            send(("end", _resident_bytes()))
            continue
        _, path, kind, settings = request
        _limit_cpu(settings.parse_timeout_s)
        try:
            _read_one(Path(path), kind, settings, send)
        except Exception as exc:
            send(_error_message(exc, settings, memory_bytes))
            continue
        send(("end", _resident_bytes()))  # measured once the document's objects are gone


def _read_one(path: Path, kind: str, settings: Settings, send: Callable[[object], None]) -> None:
    loaded = load_document(path, settings, kind=kind)
    send(("loaded", loaded.kind, loaded.page_count, loaded.title))
    for page in _counted(loaded.pages, path.stat().st_size, settings):
        send(("page", page))


def _error_message(
    exc: Exception, settings: Settings, memory_bytes: int
) -> tuple[str, str, str, dict[str, Any]]:
    """What the parent is told: out of memory wherever it happened, else the loader's error.

    Parsers report a failed allocation in their own words (lxml: ``XMLSyntaxError('unknown
    error')``) and loaders turn a parser's exceptions into ``CorruptDocument``, so running out is
    recognised by its effect: a ``MemoryError`` in the chain, or an address space that reached
    the limit (this process then serves no other document)."""
    cause: BaseException | None = exc
    out_of_memory = _peak_address_space() >= 0.9 * memory_bytes
    while cause is not None and not out_of_memory:
        out_of_memory = isinstance(cause, MemoryError)
        cause = cause.__cause__ or cause.__context__
    if out_of_memory:
        error: RagError = _out_of_memory(settings.parse_memory_mb)
        return ("error", error.code, error.message, error.extra)
    if isinstance(exc, RagError):
        return ("error", exc.code, exc.message, exc.extra)
    # a loader's bug (loaders raise only rag.errors): an internal error, retried like one
    return ("error", RagError.code, f"{exc.__class__.__name__} while reading the document", {})


def main() -> None:
    memory = int(sys.argv[1])
    os.nice(int(sys.argv[2]))  # inherited by tesseract
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # before any parser is imported
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints cannot break the frames
    try:
        _serve(sys.stdin.buffer, replies, memory)
    except MemoryError:
        os._exit(_EXIT_MEMORY)
    except (BrokenPipeError, KeyboardInterrupt):
        os._exit(0)


if __name__ == "__main__":
    main()


__all__ = ["KEEP_RSS_BYTES", "ParserPool"]
