"""A local cluster in one command: PostgreSQL, Redis and ``chroma run``, API replicas and
ingestion workers on 127.0.0.1, with a generated configuration.

    python -m deploy.cluster start [--root var/cluster] [--replicas 2] [--workers 2]
    python -m deploy.cluster status
    python -m deploy.cluster stop

Every process has its own data directory under the root (as it would on its own machine) and
shares the rest: rows in PostgreSQL (``RAG_DATABASE_URL``), vectors in Chroma
(``RAG_CHROMA_URL``), uploaded and original bytes in a shared directory (``RAG_BLOB_URL``), the
response cache and rate limits in Redis (``RAG_REDIS_URL``). Replicas serve HTTP and queue
uploads (``RAG_RUN_JOBS=false``); workers run the jobs (``rag worker``). The tests start the
same cluster (``tests/api/test_cluster.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.engines import ChromaServer, PostgresServer, RedisServer, free_port, kill_process, stop_process

RAG = Path(sys.executable).with_name("rag")


@dataclass
class Member:
    """One ``rag serve`` or ``rag worker`` process of the cluster."""

    role: str
    index: int
    data_dir: Path
    env: dict[str, str]
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def start(self) -> None:
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = (
            [str(RAG), "serve", "--port", str(self.port)] if self.role == "replica" else [str(RAG), "worker"]
        )
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            if self.role == "worker":  # it prints this line once warm and taking jobs
                if self.log_path.read_text(errors="replace").count("running jobs with") >= self.starts:
                    return
            else:
                try:
                    if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} was not ready in {timeout:.0f} s: {self.log_tail()}")

    def wait_ready_rebinding(self, attempts: int = 3) -> None:
        """``wait_ready``; a replica whose free port was taken meanwhile (another process's
        outgoing connection got it between our pick and its bind) starts again on a new one."""
        for attempt in range(attempts):
            try:
                self.wait_ready()
                return
            except RuntimeError as exc:
                if (
                    self.role != "replica"
                    or "address already in use" not in str(exc)
                    or attempt == attempts - 1
                ):
                    raise
                self.port = free_port()
                self.start()

    def kill(self) -> None:
        """SIGKILL, mid-work: what a crash or a lost machine looks like to the others."""
        kill_process(self.process)

    def stop(self) -> None:
        stop_process(self.process)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@dataclass
class Cluster:
    root: Path
    replicas: int = 2
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    chroma: ChromaServer | None = None
    members: list[Member] = field(default_factory=list)

    def start_engines(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresServer(self.root / "postgres").start()
        self.redis = RedisServer(self.root / "redis").start()
        self.chroma = ChromaServer(self.root / "chroma").start()

    def settings_env(self) -> dict[str, str]:
        """The generated configuration every member shares."""
        assert self.postgres and self.redis and self.chroma
        return {
            "RAG_DATABASE_URL": self.postgres.url,
            "RAG_CHROMA_URL": self.chroma.url,
            "RAG_REDIS_URL": self.redis.url,
            "RAG_BLOB_URL": (self.root / "blobs").resolve().as_uri(),
            **self.extra_env,
        }

    def start(self) -> Cluster:
        self.start_engines()
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        base.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        base.update({"ANONYMIZED_TELEMETRY": "False", **self.settings_env()})
        for n in range(self.replicas):
            env = {**base, "RAG_DATA_DIR": str(self.root / f"replica-{n}" / "var"), "RAG_RUN_JOBS": "false"}
            self.members.append(Member("replica", n, Path(env["RAG_DATA_DIR"]), env, port=free_port()))
        for n in range(self.workers):
            env = {**base, "RAG_DATA_DIR": str(self.root / f"worker-{n}" / "var")}
            self.members.append(Member("worker", n, Path(env["RAG_DATA_DIR"]), env))
        for member in self.members:
            member.start()
        for member in self.members:
            member.wait_ready_rebinding()
        return self

    def member(self, role: str, index: int) -> Member:
        return next(m for m in self.members if m.role == role and m.index == index)

    @property
    def replica_urls(self) -> list[str]:
        return [m.url for m in self.members if m.role == "replica"]

    def stop(self) -> None:
        for member in self.members:
            member.stop()
        for engine in (self.chroma, self.redis, self.postgres):
            if engine is not None:
                engine.stop()

    def state(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "env": self.settings_env(),
            "replicas": self.replica_urls,
            "pids": {m.name: m.process.pid for m in self.members if m.process is not None}
            | {
                e.name: e.process.pid
                for e in (self.postgres, self.redis, self.chroma)
                if e is not None and e.process is not None
            },
        }


def _state_path(root: Path) -> Path:
    return root / "cluster.json"


def cmd_start(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    if _state_path(root).exists():
        print(f"a cluster is already recorded under {root}: python -m deploy.cluster stop --root {args.root}")
        return 1
    key = secrets.token_hex(16)
    cluster = Cluster(
        root,
        args.replicas,
        args.workers,
        extra_env={"RAG_API_KEYS": f"{key}:default", "RAG_SAMPLES_DIR": str(Path("data/samples").resolve())},
    )
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    state = cluster.state()
    _state_path(root).write_text(json.dumps(state, indent=2))
    (root / "cluster.env").write_text("".join(f"{k}={v}\n" for k, v in cluster.settings_env().items()))
    print(f"cluster up under {root} (configuration: {root / 'cluster.env'})")
    for url in cluster.replica_urls:
        print(f"  replica  {url}   (curl -H 'Authorization: Bearer {key}' {url}/v1/documents)")
    print(f"  workers  {args.workers} (logs: {root}/worker-*/worker-*.log)")
    print(f"  engines  PostgreSQL {cluster.settings_env()['RAG_DATABASE_URL']}")
    print(
        f"           Redis {cluster.settings_env()['RAG_REDIS_URL']}, Chroma {cluster.settings_env()['RAG_CHROMA_URL']}"
    )
    print(f"stop it:   python -m deploy.cluster stop --root {args.root}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    path = _state_path(root)
    if not path.exists():
        print(f"no cluster recorded under {root}")
        return 1
    pids: dict[str, int] = json.loads(path.read_text())["pids"]
    for name, pid in sorted(pids.items(), key=lambda kv: kv[0] in ("postgres", "redis", "chroma")):
        try:
            os.kill(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
    path.unlink()
    print(f"cluster under {root} stopped (its data stays there)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    path = _state_path(Path(args.root).resolve())
    if not path.exists():
        print("no cluster running")
        return 1
    state = json.loads(path.read_text())
    for name, pid in state["pids"].items():
        try:
            os.kill(pid, 0)
            alive = "up"
        except ProcessLookupError:
            alive = "DOWN"
        print(f"{name:12} pid {pid:<8} {alive}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, handler in (("start", cmd_start), ("stop", cmd_stop), ("status", cmd_status)):
        p = sub.add_parser(name)
        p.add_argument("--root", default="var/cluster", help="where every process keeps its data")
        p.set_defaults(handler=handler)
        if name == "start":
            p.add_argument("--replicas", type=int, default=2)
            p.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
