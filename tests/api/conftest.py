"""A real ``rag serve`` process on 127.0.0.1 per scenario, with its own data directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.engines import kill_process, stop_process
from tests.conftest import REPO, free_port

RAG = Path(sys.executable).with_name("rag")
SAMPLES = REPO / "data" / "samples"

ALPHA_KEY = "alpha-key-0123456789abcdef"
BETA_KEY = "beta-key-0123456789abcdef"
GAMMA_KEY = "gamma-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
KEYS = f"{ALPHA_KEY}:alpha,{BETA_KEY}:beta,{GAMMA_KEY}:gamma"


class LiveServer:
    """``rag serve`` as a subprocess; the same data directory can be served again after a kill."""

    def __init__(self, data_dir: Path, env: dict[str, str], name: str = "server") -> None:
        self.data_dir = data_dir
        self.env = env
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}-{self.starts}.log"

    def start(self, *, ready: bool = True, timeout: float = 180.0) -> LiveServer:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "ANONYMIZED_TELEMETRY": "False",
                "RAG_DATA_DIR": str(self.data_dir),
                "RAG_RERANKER": "none",
                "RAG_LOG_LEVEL": "INFO",
            }
        )
        env.update(self.env)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            log = self.log_path.open("wb")
            self.proc = subprocess.Popen(
                [str(RAG), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.data_dir.parent,  # no stray .env from the repository
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            try:
                self.wait(ready=ready, timeout=timeout)
                return self
            except AssertionError:
                # the free port was taken before the server bound it (another process's outgoing
                # connection): start again on another, as `deploy/cluster.py` does
                if (
                    attempt == 2
                    or self.proc.poll() is None
                    or "address already in use" not in self.log_tail()
                ):
                    raise
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
        return self

    def wait(self, *, ready: bool, timeout: float) -> None:
        path = "/readyz" if ready else "/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(
            f"{self.name} not {'ready' if ready else 'up'} in {timeout} s:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        return "\n".join(
            (self.data_dir.parent / f"{self.name}-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash."""
        kill_process(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 60.0), **kwargs)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = client.get(f"/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        job: dict[str, Any] = resp.json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished in {timeout} s")


def upload(
    client: httpx.Client, files: list[tuple[str, bytes]], collection: str | None = None, **data: str
) -> httpx.Response:
    form: dict[str, str] = dict(data)
    if collection is not None:
        form["collection"] = collection
    return client.post(
        "/v1/documents",
        files=[("files", (name, content, "application/octet-stream")) for name, content in files],
        data=form,
    )


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 body with the stable code, the request id of the header, and nothing internal."""
    assert resp.status_code == status, f"{resp.status_code} {resp.text}"
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"/problems/{code}"
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    return body


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The shared server: three tenants and an admin key, generous limits."""
    root = tmp_path_factory.mktemp("live")
    server = LiveServer(
        root / "var",
        {
            "RAG_API_KEYS": KEYS,
            "RAG_ADMIN_KEY": ADMIN_KEY,
            "RAG_RATE_LIMIT_PER_MINUTE": "100000",
            "RAG_SAMPLES_DIR": str(SAMPLES),
        },
        name="live",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def samples_indexed(live: LiveServer) -> dict[str, dict[str, Any]]:
    """Tenant alpha's sample documents (queued by the first start), by name, once indexed."""
    return wait_for_samples(live)


def wait_for_samples(live: LiveServer) -> dict[str, dict[str, Any]]:
    with live.client(ALPHA_KEY) as client:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            docs = client.get("/v1/documents", params={"collection": "default"}).json()["documents"]
            if docs and all(d["state"] in ("indexed", "failed") for d in docs):
                return {d["name"]: d for d in docs}
            time.sleep(0.3)
    raise AssertionError("sample documents were not indexed")


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not shutil.which("chromium"):
        pytest.fail(
            "Debian's chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
