"""A fake text-embeddings-inference ``/rerank`` server, run as a real process on 127.0.0.1.

It scores a text by the share of the query's words it contains, so a test can know the right
order without a model. ``POST /control`` with ``{"mode": ...}`` makes it misbehave:
``ok``, ``error`` (500), ``slow`` (sleeps ``delay`` seconds), ``malformed`` (bad JSON),
``missing`` (leaves a passage unscored). ``GET /stats`` reports the requests it has seen.

    python tests/fakes/rerank_server.py --port 0 [--key SECRET]   # prints "PORT <n>"
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

_WORD = re.compile(r"\w+")


def overlap_score(query: str, text: str) -> float:
    q = {w.lower() for w in _WORD.findall(query)}
    t = {w.lower() for w in _WORD.findall(text)}
    return len(q & t) / len(q) if q else 0.0


class _State:
    def __init__(self, key: str | None) -> None:
        self.key = key
        self.mode = "ok"
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode())

        def do_GET(self) -> None:
            if self.path == "/stats":
                with state.lock:
                    self._json(200, {"requests": state.requests, "mode": state.mode})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": "invalid json"})
                return
            if self.path == "/control":
                with state.lock:
                    state.mode = body.get("mode", "ok")
                    state.delay = float(body.get("delay", 0.0))
                self._json(200, {"mode": state.mode})
                return
            if self.path != "/rerank":
                self._json(404, {"error": "not found"})
                return
            auth = self.headers.get("Authorization")
            with state.lock:
                state.requests.append({"auth": auth, "texts": len(body.get("texts", []))})
                mode, delay = state.mode, state.delay
            if state.key and auth != f"Bearer {state.key}":
                self._json(401, {"error": "unauthorized"})
                return
            if mode == "error":
                self._json(500, {"error": "model crashed"})
                return
            if mode == "slow":
                time.sleep(delay)
            if mode == "malformed":
                self._send(200, b'[{"index": 0, "sco')
                return
            query, texts = body["query"], body["texts"]
            results = [{"index": i, "score": overlap_score(query, t)} for i, t in enumerate(texts)]
            if mode == "missing":
                results = results[1:]
            results.sort(key=lambda r: -r["score"])  # TEI answers best first
            self._json(200, results)

    return Handler


class RerankServer:
    """Starts the fake in its own process; use as a context manager."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> RerankServer:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
        if self.key:
            cmd += ["--key", self.key]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self._proc.kill()
            raise RuntimeError(f"fake rerank server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        httpx.post(f"{self.url}/control", json={"mode": mode, "delay": delay}, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/stats", timeout=5).json())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=None)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(_State(args.key)))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
