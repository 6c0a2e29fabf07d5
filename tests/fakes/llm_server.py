"""A fake LLM provider on 127.0.0.1 speaking OpenAI Chat Completions and Anthropic Messages.

Run as a real process (``python tests/fakes/llm_server.py --port 0`` prints ``PORT <n>``).
It records every call (``GET /_calls``) and misbehaves on request (``POST /_mode``)::

    {"default": {"kind": "ok"}, "script": [{"kind": "status", "status": 429, "retry_after": "1"}]}

``script`` entries are used by the next calls in order, then ``default`` for every later call.
Kinds: ok, status (any HTTP status, optional retry_after), hang, malformed (broken JSON body),
length (finish_reason length), cut (stream breaks off mid-way; plain calls get a body cut short),
cut_clean (stream ends without its final event), stall (stream stops sending, connection open).
Options: text, usage ({"prompt_tokens", "completion_tokens"} or null to omit), delay_s, at (the
stream chunk where cut/cut_clean/stall happen; 0 = before any text), message (error body text).
``FakeLLMServer`` starts and drives one from tests and benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

DEFAULT_TEXT = "The Eiffel Tower is in Paris [1]."


# --- the server -----------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []
        self.default: dict[str, Any] = {"kind": "ok"}


STATE = _State()


def _usage(behaviour: dict[str, Any], body: dict[str, Any], text: str) -> dict[str, int] | None:
    if "usage" in behaviour:
        return behaviour["usage"]
    words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    return {"prompt_tokens": words, "completion_tokens": len(text.split())}


def _error_body(fmt: str, status: int) -> dict[str, Any]:
    if fmt == "anthropic":
        return {"type": "error", "error": {"type": f"http_{status}", "message": f"fake failure {status}"}}
    return {"error": {"message": f"fake failure {status}", "type": f"http_{status}", "code": status}}


def _chunks(text: str, pieces: int = 4) -> list[str]:
    words = text.split(" ")
    size = max(1, -(-len(words) // pieces))
    parts = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


async def _break(kind: str) -> None:
    """Misbehave where the script says; the caller then ends the stream without its final event."""
    if kind == "cut":
        raise ConnectionResetError("fake: stream cut")
    if kind == "stall":
        await asyncio.sleep(3600)


async def _openai_stream(
    kind: str, text: str, finish: str, usage: dict[str, int] | None, model: str, at: int
) -> AsyncIterator[bytes]:
    parts = _chunks(text)
    for i, part in enumerate(parts):
        if kind in ("cut", "cut_clean", "stall") and i == at:
            await _break(kind)
            return
        chunk = {
            "id": "fake",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}],
        }
        yield _sse(chunk)
        await asyncio.sleep(0)
    yield _sse(
        {"id": "fake", "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    )
    if usage is not None:
        yield _sse({"id": "fake", "model": model, "choices": [], "usage": usage})
    yield _sse("[DONE]")


async def _anthropic_stream(
    kind: str, text: str, finish: str, usage: dict[str, int] | None, model: str, at: int
) -> AsyncIterator[bytes]:
    start_usage = {"input_tokens": usage["prompt_tokens"], "output_tokens": 1} if usage else {}
    yield _sse(
        {"type": "message_start", "message": {"id": "fake", "model": model, "usage": start_usage}},
        "message_start",
    )
    yield _sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    )
    parts = _chunks(text)
    for i, part in enumerate(parts):
        if kind in ("cut", "cut_clean", "stall") and i == at:
            await _break(kind)
            return
        yield _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}},
            "content_block_delta",
        )
        await asyncio.sleep(0)
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    stop = "max_tokens" if finish == "length" else "end_turn"
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop}}
    if usage is not None:
        delta["usage"] = {"output_tokens": usage["completion_tokens"]}
    yield _sse(delta, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")


def build_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def handle(request: Request, fmt: str) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(_error_body(fmt, 400), status_code=400)
        STATE.calls.append({"format": fmt, "t": time.time(), "body": body, "headers": dict(request.headers)})
        behaviour = STATE.script.pop(0) if STATE.script else STATE.default
        kind = behaviour.get("kind", "ok")
        if behaviour.get("delay_s"):
            await asyncio.sleep(float(behaviour["delay_s"]))
        if kind == "hang":
            await asyncio.sleep(float(behaviour.get("hang_s", 3600)))
        if kind == "status":
            status = int(behaviour["status"])
            headers = {"Retry-After": str(behaviour["retry_after"])} if "retry_after" in behaviour else {}
            error = _error_body(fmt, status)
            if "message" in behaviour:
                error["error"]["message"] = behaviour["message"]
            return JSONResponse(error, status_code=status, headers=headers)
        if kind == "malformed":
            return Response('{"id": "fake", "choices": [{"message": ', media_type="application/json")
        model = str(body.get("model", "fake-model"))
        text = str(behaviour.get("text", DEFAULT_TEXT))
        finish = "length" if kind == "length" else "stop"
        usage = _usage(behaviour, body, text)
        if body.get("stream"):
            stream = _anthropic_stream if fmt == "anthropic" else _openai_stream
            at = int(behaviour.get("at", 2))
            events = stream(kind, text, finish, usage, model, at)
            return StreamingResponse(events, media_type="text/event-stream")
        if kind == "cut":
            return Response(
                '{"id": "fake", "choices": [{"message": {"content": "The', media_type="application/json"
            )
        if fmt == "anthropic":
            payload: dict[str, Any] = {
                "id": "fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if finish == "length" else "end_turn",
            }
            if usage is not None:
                payload["usage"] = {
                    "input_tokens": usage["prompt_tokens"],
                    "output_tokens": usage["completion_tokens"],
                }
        else:
            payload = {
                "id": "fake",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                ],
            }
            if usage is not None:
                payload["usage"] = {
                    **usage,
                    "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
                }
        return JSONResponse(payload)

    async def chat(request: Request) -> Response:
        return await handle(request, "openai")

    async def messages(request: Request) -> Response:
        return await handle(request, "anthropic")

    async def calls(request: Request) -> Response:
        return JSONResponse({"count": len(STATE.calls), "calls": STATE.calls})

    async def mode(request: Request) -> Response:
        spec = await request.json()
        STATE.default = spec.get("default") or {"kind": "ok"}
        STATE.script = list(spec.get("script") or [])
        return JSONResponse({"ok": True})

    async def reset(request: Request) -> Response:
        STATE.__init__()  # type: ignore[misc]
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/_calls", calls, methods=["GET"]),
            Route("/_mode", mode, methods=["POST"]),
            Route("/_reset", reset, methods=["POST"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(build_app(), log_level="error", access_log=False, lifespan="off", backlog=2048)
    uvicorn.Server(config).run(sockets=[sock])


# --- the client side: start and drive one -------------------------------------------------


class FakeLLMServer:
    """A running fake server process; ``openai_url`` and ``anthropic_url`` are its base URLs."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.root = f"http://127.0.0.1:{port}"
        self.openai_url = f"{self.root}/v1"
        self.anthropic_url = self.root

    @classmethod
    def start(cls, log_path: Path | None = None, timeout_s: float = 30.0) -> FakeLLMServer:
        stderr = log_path.open("w") if log_path else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-u", str(Path(__file__).resolve()), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            process.kill()
            raise RuntimeError(f"fake LLM server did not start: {line!r}")
        server = cls(process, int(line.split()[1]))
        while time.monotonic() < deadline:  # the socket is bound before uvicorn serves on it
            try:
                server.reset()
                return server
            except OSError:
                time.sleep(0.05)
        server.stop()
        raise RuntimeError("fake LLM server did not answer")

    @property
    def client(self) -> Any:
        """One plain-HTTP client for control calls (building an SSL context per call is slow)."""
        if getattr(self, "_client", None) is None:
            import httpx

            self._client = httpx.Client(base_url=self.root, timeout=5, verify=False, trust_env=False)
        return self._client

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        self.client.post(path, json=payload).raise_for_status()

    def reset(self) -> None:
        import httpx

        try:
            self._post("/_reset", {})
        except httpx.TransportError as exc:
            raise OSError(str(exc)) from exc

    def mode(self, default: dict[str, Any] | None = None, script: list[dict[str, Any]] | None = None) -> None:
        self._post("/_mode", {"default": default or {"kind": "ok"}, "script": script or []})

    def calls(self) -> list[dict[str, Any]]:
        response = self.client.get("/_calls")
        response.raise_for_status()
        return list(response.json()["calls"])

    def count(self) -> int:
        return len(self.calls())

    def stop(self) -> None:
        # nothing to flush, and hanging requests would hold a graceful shutdown for seconds
        self.process.kill()
        self.process.wait()
        if getattr(self, "_client", None) is not None:
            self._client.close()
        if self.process.stdout:
            self.process.stdout.close()


if __name__ == "__main__":
    main()
