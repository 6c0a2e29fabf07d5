"""What a hostile tenant tried, against a real ``rag serve``: each attack is contained.

Decompression bombs fail with ``resource_limit`` within the configured time while another
tenant is served and the service's memory stays where it was; a restart does not run them
again; one tenant's backlog does not delay another's first document; oversized form fields
are refused unread; slow clients lose their connection instead of holding it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import ADMIN_KEY, ALPHA_KEY, BETA_KEY, KEYS, LiveServer, upload, wait_job
from tests.bombs import docx_bomb, pdf_bomb

pytestmark = pytest.mark.slow

PAGE_TIMEOUT_S = 15
HEADER_TIMEOUT_S = 2
BODY_IDLE_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("hostile")
    live = LiveServer(
        root / "var",
        {
            "RAG_API_KEYS": KEYS,
            "RAG_ADMIN_KEY": ADMIN_KEY,
            "RAG_RATE_LIMIT_PER_MINUTE": "100000",
            "RAG_WORKERS": "2",
            "RAG_PARSE_PAGE_TIMEOUT_S": str(PAGE_TIMEOUT_S),
            "RAG_MAX_INFLATION": "1000",  # lets the .docx bomb reach the parser (100 refuses it unread)
            "RAG_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "RAG_BODY_IDLE_TIMEOUT_S": str(BODY_IDLE_TIMEOUT_S),
            "RAG_CORS_ORIGINS": "https://app.example",
        },
        name="hostile",
    )
    live.start()
    yield live
    live.stop()


def resident_mb(server: LiveServer) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def job_of(client: httpx.Client, name: str, content: bytes, collection: str) -> dict[str, Any]:
    resp = upload(client, [(name, content)], collection=collection)
    assert resp.status_code == 202, resp.text
    item: dict[str, Any] = resp.json()["items"][0]
    return item


def wait_running(client: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{job_id}").json()["state"] == "queued":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)


def test_bombs_fail_with_resource_limit_while_another_tenant_is_served(server: LiveServer) -> None:
    with server.client(ALPHA_KEY) as alpha, server.client(BETA_KEY) as beta:
        warm = job_of(beta, "warm.txt", b"The warm-up note lists three lighthouses. " * 40, "notes")
        assert wait_job(beta, warm["job_id"])["state"] == "succeeded"
        before = resident_mb(server)

        # the .docx bomb: 0.8 MB that python-docx parses for minutes (210 MB of XML)
        docx = job_of(alpha, "bomb.docx", docx_bomb(210), "reports")
        wait_running(alpha, docx["job_id"])
        started = time.monotonic()
        note = job_of(
            beta, "ferry.txt", b"The ferry timetable lists the 7:15 crossing to Skye. " * 40, "notes"
        )
        assert wait_job(beta, note["job_id"], timeout=60)["state"] == "succeeded"
        assert alpha.get(f"/v1/jobs/{docx['job_id']}").json()["state"] == "running"  # served meanwhile
        failed = wait_job(alpha, docx["job_id"], timeout=PAGE_TIMEOUT_S + 30)
        assert failed["state"] == "failed" and failed["error"]["code"] == "resource_limit", failed
        assert time.monotonic() - started < PAGE_TIMEOUT_S + 10

        # the PDF bomb: 0.5 MB whose content stream inflates past the parser's 2 GB
        pdf = job_of(alpha, "bomb.pdf", pdf_bomb(400), "reports")
        failed = wait_job(alpha, pdf["job_id"], timeout=PAGE_TIMEOUT_S + 30)
        assert failed["state"] == "failed" and failed["error"]["code"] == "resource_limit", failed
        assert failed["attempts"] == 1  # never retried
        assert resident_mb(server) - before < 200

        answer = beta.post(
            "/v1/query", json={"question": "When is the crossing to Skye?", "collection": "notes"}
        )
        assert answer.status_code == 200 and "7:15" in answer.text

    server.stop()  # a restart does not run a resource-limited job again
    server.start()
    time.sleep(2)
    with server.client(ALPHA_KEY) as alpha:
        for item in (docx, pdf):
            job = alpha.get(f"/v1/jobs/{item['job_id']}").json()
            assert (job["state"], job["attempts"], job["error"]["code"]) == ("failed", 1, "resource_limit")


def test_another_tenants_first_document_does_not_wait_behind_a_backlog(server: LiveServer) -> None:
    backlog = [
        (f"ledger-{n}.txt", f"Ledger {n}. The mill ground {n * 17} sacks of rye on day {n}. ".encode() * 60)
        for n in range(20)
    ]
    with server.client(ALPHA_KEY) as alpha, server.client(BETA_KEY) as beta:
        resp = upload(alpha, backlog, collection="backlog")
        assert resp.status_code == 202, resp.text
        alpha_jobs = [item["job_id"] for item in resp.json()["items"]]
        first = job_of(
            beta, "first.txt", b"Beta's first document names the harbour master, Ines. " * 20, "first"
        )
        assert wait_job(beta, first["job_id"], timeout=60)["state"] == "succeeded"
        states = [alpha.get(f"/v1/jobs/{job_id}").json()["state"] for job_id in alpha_jobs]
        assert states.count("queued") >= 10, states  # beta went ahead of most of alpha's twenty
        for job_id in alpha_jobs:
            assert wait_job(alpha, job_id, timeout=120)["state"] == "succeeded"


def raw_request(server: LiveServer, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(head)
    return sock


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_gigabytes_of_form_fields_are_refused_unread(server: LiveServer) -> None:
    before = resident_mb(server)
    boundary = b"fieldsfieldsfields"
    size = 1536 * 1024 * 1024  # 1.5 GB in one field nobody asked for
    head = (
        b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + ALPHA_KEY.encode()
        + b"\r\nContent-Type: multipart/form-data; boundary="
        + boundary
        + b"\r\nContent-Length: "
        + str(size + 200).encode()
        + b"\r\n\r\n--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="notes"\r\n\r\n'
    )
    sock = raw_request(server, head)
    sock.setblocking(False)
    sent, block, response = 0, b"x" * (1024 * 1024), b""
    while sent < size:
        try:
            response += sock.recv(65536)
            if response:
                break
        except BlockingIOError:
            pass
        try:
            sent += sock.send(block)
        except BlockingIOError:
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.settimeout(10)
    with contextlib.suppress(ConnectionResetError):  # the server may close as it answers
        response += read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 422"), response[:200]
    assert b"unknown form field" in response
    assert sent < 256 * 1024 * 1024  # refused long before the 1.5 GB were sent
    assert resident_mb(server) - before < 100


def test_a_client_that_sends_its_headers_slowly_loses_the_connection(server: LiveServer) -> None:
    slow = []
    for _ in range(30):
        sock = raw_request(server, b"GET /healthz HTTP/1.1\r\n")
        slow.append(sock)
    started = time.monotonic()
    closed = 0
    while time.monotonic() - started < HEADER_TIMEOUT_S + 5 and closed < len(slow):
        # one header byte each half second would hold uvicorn's connection forever
        served = httpx.get(server.url + "/healthz", timeout=5)
        assert served.status_code == 200  # the service answers meanwhile
        closed = 0
        for sock in slow:
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed += 1
        time.sleep(0.5)
    assert closed == len(slow)
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 5
    for sock in slow:
        sock.close()


def test_a_body_that_stops_arriving_gets_408(server: LiveServer) -> None:
    sock = raw_request(
        server,
        b"POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + ALPHA_KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        + b'{"question": "wh',
    )
    started = time.monotonic()
    response = read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 408"), response[:300]
    assert b"application/problem+json" in response
    assert BODY_IDLE_TIMEOUT_S <= time.monotonic() - started < BODY_IDLE_TIMEOUT_S + 5


def test_cors_answers_only_the_configured_origins(server: LiveServer) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            server.url + "/v1/query",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=10,
        )

    allowed = preflight("https://app.example")
    assert (
        allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
    )
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers
    with server.client(ALPHA_KEY) as app:
        listed = app.get("/v1/documents", headers={"Origin": "https://app.example"})
        assert listed.status_code == 200
        assert listed.headers["access-control-allow-origin"] == "https://app.example"
