"""The shared engines, started from Debian's and the project's own packages on 127.0.0.1:
PostgreSQL (``initdb`` + ``postgres``), ``redis-server`` and ``chroma run``.

Used by ``python -m deploy.cluster`` (a local cluster in one command) and by the tests, which
start the same real servers. PostgreSQL refuses to run as root: as root, the cluster belongs to
``nobody`` and its processes run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

POSTGRES_SUPERUSER = "rag"
CHROMA = Path(sys.executable).with_name("chroma")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_binaries() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` directory (``postgresql`` from Debian)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def kill_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL: no shutdown handler runs, as in a crash or a lost machine."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def stop_process(
    process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 30
) -> None:
    """Ask it to stop with ``sig``; SIGKILL if it has not within ``timeout``."""
    if process is not None and process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process(process)


def _others_can_enter(directory: Path) -> bool:
    """Every directory down to ``directory`` lets other users through (o+x)."""
    directory = directory.resolve()
    while not directory.exists():
        directory = directory.parent
    return all(path.stat().st_mode & 0o001 for path in (directory, *directory.parents))


class Engine:
    """A server process under a directory of its own."""

    name = "engine"

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def _spawn(self, argv: list[str], **kwargs: Any) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **kwargs)

    def _wait(self, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in {timeout:.0f} s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the server goes away mid-use, as a crashed or partitioned one does."""
        kill_process(self.process)

    def stop(self) -> None:
        stop_process(self.process, self.stop_signal)

    stop_signal = signal.SIGTERM

    def __enter__(self) -> Any:
        return self.start()  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresServer(Engine):
    """A throw-away PostgreSQL cluster; ``fresh_database`` makes a new database in milliseconds."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM ("smart") would wait for every client

    def __init__(self, root: Path, port: int | None = None) -> None:
        if os.geteuid() == 0 and not _others_can_enter(root.parent):
            # the cluster's user must reach its directory (pytest's tmp dirs are root-only)
            root = Path(tempfile.mkdtemp(prefix="rag-postgres-"))
        super().__init__(root, port)
        binaries = postgres_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/system-deps.sh installs it)")
        self.bin = binaries
        self.data = root / "data"
        self._user: dict[str, Any] = {}
        root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
            self._user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        os.chmod(root, 0o755)

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{POSTGRES_SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def start(self) -> PostgresServer:
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", POSTGRES_SUPERUSER, "--auth=trust",
                 "-E", "UTF8", "--no-sync", "--locale=C"],
                check=True, capture_output=True, cwd=self.root, **self._user,
            )  # fmt: skip
        if os.geteuid() == 0 and not self.log_path.exists():
            self.log_path.touch()
            os.chown(self.log_path, self._user["user"], self._user["group"])
        self._spawn(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
             "-k", str(self.root), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300"],
            **self._user,
        )  # fmt: skip

        def ready() -> bool:
            psycopg.connect(self.url, connect_timeout=2).close()
            return True

        self._wait(ready, 60)
        return self

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.database_url(name)

    def fresh_database(self) -> str:
        """A new empty database's URL."""
        return self.create_database("t_" + uuid.uuid4().hex[:16])

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer(Engine):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/system-deps.sh installs it)")
        self.root.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)]
        )  # fmt: skip

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")

        self._wait(ready, 30)
        return self


class ChromaServer(Engine):
    """``chroma run``: the vector store every process shares."""

    name = "chroma"

    def __init__(self, path: Path, port: int | None = None) -> None:
        super().__init__(path, port)
        self.path = path
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ChromaServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        )
        self._wait(lambda: httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200, timeout)
        return self

    def client(self) -> Any:
        import chromadb

        return chromadb.HttpClient(
            host="127.0.0.1", port=self.port, settings=chromadb.config.Settings(anonymized_telemetry=False)
        )

    def wipe(self) -> None:
        """Delete every collection: the next test starts from an empty server."""
        client = self.client()
        for collection in client.list_collections():
            client.delete_collection(collection.name)
