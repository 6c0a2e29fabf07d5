"""Every failure is problem+json with its stable code: limits, bad input, and failing providers."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from api.auth import KeyRing
from rag.llm.budget import BudgetLedger
from rag.settings import load_settings
from tests.api.conftest import LiveServer, assert_problem, upload, wait_job
from tests.api.pdfgen import make_pdf
from tests.api.test_flow import parse_sse
from tests.fakes.llm_server import FakeLLMServer

pytestmark = pytest.mark.slow

LIM_KEY = "limits-key-0123456789abcdef"
RL_KEY = "ratelimited-key-0123456789"
SPENDER_KEY = "spender-key-0123456789abcdef"
PAYER_KEY = "payer-key-0123456789abcdef"


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("limits") / "var",
        {
            "RAG_API_KEYS": f"{LIM_KEY}:lim,{RL_KEY}:rl",
            "RAG_MAX_UPLOAD_MB": "1",
            "RAG_MAX_QUEUE_DEPTH": "2",
            "RAG_MAX_QUESTION_CHARS": "200",
            "RAG_MAX_TOP_K": "10",
            "RAG_RATE_LIMIT_PER_MINUTE": "60",
            "RAG_QUERY_DEADLINE_S": "0.001",
            "RAG_MAX_PDF_PAGES": "3",
            "RAG_MAX_IMAGE_PIXELS": "1000000",
        },
        name="limits",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def lim(limits: LiveServer) -> Iterator[httpx.Client]:
    with limits.client(LIM_KEY) as client:
        yield client


def test_upload_limits(limits: LiveServer, lim: httpx.Client) -> None:
    body = assert_problem(upload(lim, [("big.txt", b"word " * 320_000)]), 413, "too_large")
    assert "1 MB" in body["detail"]
    assert_problem(upload(lim, [("blob.bin", bytes(range(256)) * 64)]), 415, "unsupported_type")
    assert_problem(upload(lim, [("anim.gif", b"GIF89a" + b"\x00" * 100)]), 415, "unsupported_type")
    assert_problem(upload(lim, [("empty.txt", b"")]), 422, "empty_document")
    assert_problem(upload(lim, [("a.txt", b"text")], collection="../etc"), 422, "invalid_request")
    # a trailing newline passed `re.match` with `$`: the upload was accepted and its job failed
    assert_problem(upload(lim, [("a.txt", b"text")], collection="docs\n"), 422, "invalid_request")
    assert_problem(upload(lim, [("a.txt", b"text")], metadata="[1, 2]"), 422, "invalid_request")
    # only the fields an upload uses, each once: anything else is refused before it is buffered
    assert_problem(upload(lim, [("a.txt", b"text")], padding="x" * 1000), 422, "invalid_request")
    twice = lim.post(
        "/v1/documents",
        files=[
            ("files", ("a.txt", b"text", "text/plain")),
            ("collection", (None, b"a")),
            ("collection", (None, b"b")),
        ],
    )
    assert_problem(twice, 422, "invalid_request")
    assert_problem(lim.post("/v1/documents", data={"collection": "x"}, files=[]), 422, "invalid_request")
    assert_problem(lim.post("/v1/documents", json={"files": []}), 422, "invalid_request")
    # limits a file's own structure states are found at upload: 413 now, not a 202 and a failed job
    four_pages = make_pdf([f"Page {n} of the orchard log." for n in range(4)])
    assert_problem(upload(lim, [("long.pdf", four_pages)]), 413, "too_many_pages")
    big = io.BytesIO()
    Image.new("1", (1200, 1200)).save(big, format="PNG", optimize=True)
    assert_problem(upload(lim, [("big.png", big.getvalue())]), 413, "image_too_large")
    uploads = limits.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # refused uploads leave no file behind


def test_queue_full_refuses_the_whole_upload(limits: LiveServer, lim: httpx.Client) -> None:
    files = [(f"q{i}.txt", f"Queue test document number {i}.".encode()) for i in range(3)]
    resp = upload(lim, files, collection="queue")
    body = assert_problem(resp, 429, "queue_full")
    assert int(resp.headers["retry-after"]) >= 1 and body["retry_after"] >= 1
    assert lim.get("/v1/documents", params={"collection": "queue"}).json()["total"] == 0


def test_request_limits(lim: httpx.Client) -> None:
    assert_problem(lim.post("/v1/query", json={"question": "x" * 201}), 422, "invalid_request")
    assert_problem(lim.post("/v1/query", json={"question": "why?", "top_k": 11}), 422, "invalid_request")
    assert_problem(lim.post("/v1/search", json={"query": "why?", "top_k": 0}), 422, "invalid_request")
    assert_problem(lim.post("/v1/query", json={"question": "why?", "colour": 1}), 422, "invalid_request")
    assert_problem(
        lim.post("/v1/query", content=b"{not json", headers={"Content-Type": "application/json"}),
        422,
        "invalid_request",
    )
    big = b'{"question": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert_problem(
        lim.post("/v1/query", content=big, headers={"Content-Type": "application/json"}), 413, "too_large"
    )


def test_deadline_exceeded(lim: httpx.Client) -> None:
    assert_problem(
        lim.post("/v1/query", json={"question": "What is a lighthouse?"}), 504, "deadline_exceeded"
    )
    assert_problem(lim.post("/v1/search", json={"query": "What is a lighthouse?"}), 504, "deadline_exceeded")


def test_routes_methods_and_problem_types(lim: httpx.Client) -> None:
    assert_problem(lim.get("/v1/nowhere"), 404, "not_found")
    assert_problem(lim.get("/v1/documents/0123456789abcdef"), 404, "not_found")
    assert_problem(lim.patch("/v1/documents"), 405, "method_not_allowed")
    assert_problem(lim.get("/problems/no_such_code"), 404, "not_found")
    assert lim.get("/problems/queue_full").json() == {
        "code": "queue_full",
        "title": "Ingestion queue is full",
        "status": 429,
    }


def test_failed_job_reports_its_error(lim: httpx.Client) -> None:
    # a PDF whose structure cannot be read is refused at upload, before a job exists
    broken = make_pdf(["A page that will be cut off."])[:-120]  # no xref, no trailer
    assert_problem(upload(lim, [("broken.pdf", broken)], collection="broken"), 422, "corrupt_document")
    # one that opens but holds no text fails in its job (the text is only found by reading it)
    blank = make_pdf([""])
    (item,) = upload(lim, [("blank.pdf", blank)], collection="broken").json()["items"]
    job = wait_job(lim, item["job_id"])
    assert job["state"] == "failed" and job["attempts"] == 1  # a bad document is not retried
    assert job["error"]["code"] == "no_text" and job["error"]["message"]
    doc = lim.get(f"/v1/documents/{item['document_id']}").json()
    assert doc["state"] == "failed" and doc["error"] == job["error"]


def test_rate_limit_is_per_key(limits: LiveServer, lim: httpx.Client) -> None:
    with limits.client(RL_KEY) as client:
        statuses = [client.get("/v1/documents") for _ in range(70)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and statuses[0].status_code == 200
    body = assert_problem(limited[0], 429, "rate_limited")
    assert int(limited[0].headers["retry-after"]) >= 1 and body["retry_after"] >= 1
    assert lim.get("/v1/documents").status_code == 200  # another key is not slowed down


def test_failed_authentication_is_throttled_per_address(limits: LiveServer, lim: httpx.Client) -> None:
    with limits.client("guessed-key-0000000000000000") as guesser:
        statuses = [guesser.get("/v1/documents") for _ in range(30)]
    assert statuses[0].status_code == 401
    throttled = [r for r in statuses if r.status_code == 429]
    assert len(throttled) >= 5  # 20 failures a minute by default
    assert_problem(throttled[0], 429, "rate_limited")
    assert lim.get("/v1/documents").status_code == 200  # a valid key from the same address is served


# --- a chain of real HTTP providers (the fake speaks the OpenAI wire format) ------------------


@pytest.fixture(scope="module")
def fake_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeLLMServer]:
    server = FakeLLMServer.start(tmp_path_factory.mktemp("fake-llm") / "fake.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLMServer) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("providers") / "var"
    keys = f"{SPENDER_KEY}:spender,{PAYER_KEY}:payer"
    env = {
        "RAG_API_KEYS": keys,
        "RAG_LLM_CHAIN": "openai",
        "RAG_LLM_LAST_RESORT": "false",
        "RAG_OPENAI_BASE_URL": fake_llm.openai_url,
        "RAG_OPENAI_API_KEY": "sk-fake-0123456789",
        "RAG_OPENAI_MODEL": "gpt-4o-mini",
        "RAG_BUDGET_PER_KEY_DAILY_USD": "0.05",
        "RAG_BUDGET_ACTION": "fail",
        "RAG_CACHE_ENABLED": "false",
        "RAG_LLM_MAX_ATTEMPTS": "1",
        "RAG_QUERY_DEADLINE_S": "3",
    }
    # The spender key has already spent more than its daily budget today (recorded through the ledger).
    spender = KeyRing.from_settings(load_settings(api_keys=keys)).authenticate(SPENDER_KEY).key_id
    ledger = BudgetLedger(data_dir / "llm_budget.sqlite3", daily_usd=None, per_key_daily_usd=1.0)
    reservation = ledger.reserve(0.5, spender)
    assert reservation is not None
    ledger.settle(reservation, 0.5)
    ledger.close()
    server = LiveServer(data_dir, env, name="providers")
    server.start()
    for key in (SPENDER_KEY, PAYER_KEY):
        with server.client(key) as client:
            (item,) = upload(client, [("keeper.pdf", KEEPER_PDF)]).json()["items"]
            assert wait_job(client, item["job_id"])["state"] == "succeeded"
    yield server
    server.stop()


KEEPER_PDF = make_pdf(
    ["Keepers wound the clockwork that turned the lens of the Bell Rock lighthouse every night."]
)
QUESTION = {"question": "What did the keepers wind every night?"}


def test_answer_from_a_wire_level_provider(providers: LiveServer, fake_llm: FakeLLMServer) -> None:
    fake_llm.mode({"kind": "ok", "text": '{"answer": "They wound the clockwork [1].", "citations": [1]}'})
    with providers.client(PAYER_KEY) as client:
        answer = client.post("/v1/query", json=QUESTION).json()
    assert answer["provider"] == "openai" and answer["citations"][0]["document_name"] == "keeper.pdf"
    assert answer["usage"]["cost"] > 0
    assert any("Bell Rock" in str(call) for call in fake_llm.calls())


def test_budget_exceeded(providers: LiveServer, fake_llm: FakeLLMServer) -> None:
    fake_llm.mode({"kind": "ok"})
    with providers.client(SPENDER_KEY) as client:
        assert_problem(client.post("/v1/query", json=QUESTION), 402, "budget_exceeded")


def test_slow_provider_hits_the_query_deadline(providers: LiveServer, fake_llm: FakeLLMServer) -> None:
    fake_llm.mode({"kind": "hang", "hang_s": 30})
    started = time.monotonic()
    with providers.client(PAYER_KEY) as client:
        assert_problem(client.post("/v1/query", json=QUESTION), 504, "deadline_exceeded")
    assert time.monotonic() - started < 10


def test_stream_that_breaks_ends_with_an_error_event(providers: LiveServer, fake_llm: FakeLLMServer) -> None:
    fake_llm.mode(
        {"kind": "cut", "at": 2, "text": "The keepers wound the clockwork of the lens [1] nightly."}
    )
    with (
        providers.client(PAYER_KEY) as client,
        client.stream("POST", "/v1/query", json={**QUESTION, "stream": True}) as resp,
    ):
        assert resp.status_code == 200
        events = parse_sse(resp.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "delta" and names[-1] == "error" and "answer" not in names
    problem = events[-1][1]
    assert problem["code"] == "provider_stream_interrupted" and problem["status"] == 502
    assert "Traceback" not in str(problem)


def test_problem_detail_never_carries_a_secret(providers: LiveServer, fake_llm: FakeLLMServer) -> None:
    fake_llm.mode({"kind": "status", "status": 401, "message": "bad key sk-fake-0123456789"})
    with providers.client(PAYER_KEY) as client:
        resp = client.post("/v1/query", json={**QUESTION, "stream": True})
    assert "sk-fake-0123456789" not in resp.text


def test_failing_provider_without_a_last_resort_is_provider_unavailable(
    providers: LiveServer, fake_llm: FakeLLMServer
) -> None:
    fake_llm.mode({"kind": "status", "status": 500})
    with providers.client(PAYER_KEY) as client:
        problem = assert_problem(client.post("/v1/query", json=QUESTION), 503, "provider_unavailable")
    assert "Traceback" not in str(problem)
