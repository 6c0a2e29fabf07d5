"""The page at ``/`` in headless Chromium: upload a document, ask, see the cited answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import ALPHA_KEY, LiveServer
from tests.api.pdfgen import make_pdf

pytestmark = pytest.mark.slow


def test_upload_ask_and_see_citations(live: LiveServer, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    document = tmp_path / "orchard.pdf"
    document.write_bytes(
        make_pdf(
            [
                "Orchard log, spring. The pear trees were pruned in March.",
                "Orchard log, autumn. The quince harvest of the west orchard weighed 412 kilograms.",
            ]
        )
    )
    wait = WebDriverWait(driver, 90)
    driver.get(live.url + "/")
    assert driver.title == "Ask your documents"
    driver.find_element(By.ID, "api-key").send_keys(ALPHA_KEY)
    collection = driver.find_element(By.ID, "collection")
    collection.clear()
    collection.send_keys("browser")
    driver.find_element(By.ID, "files").send_keys(str(document))
    driver.find_element(By.ID, "upload-btn").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs li[data-state=succeeded]"))
    assert "orchard.pdf" in driver.find_element(By.ID, "jobs").text

    driver.find_element(By.ID, "question").send_keys("How much did the quince harvest weigh?")
    driver.find_element(By.ID, "ask-btn").click()
    wait.until(lambda d: d.find_element(By.ID, "answer").get_attribute("data-done") == "true")
    assert driver.find_element(By.ID, "ask-error").text == ""
    assert "412" in driver.find_element(By.ID, "answer").text
    citations = driver.find_elements(By.CSS_SELECTOR, "#citations li.citation")
    assert citations
    first = citations[0]
    assert first.find_element(By.CLASS_NAME, "doc").text == "orchard.pdf"
    assert "2" in first.find_element(By.CLASS_NAME, "pages").text
    assert "quince" in first.find_element(By.CLASS_NAME, "snippet").text


POLITE_KEY = "polite-key-0123456789abcdef"


@pytest.fixture
def rate_limited(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path / "var", {"RAG_API_KEYS": f"{POLITE_KEY}:polite", "RAG_RATE_LIMIT_PER_MINUTE": "6"}, "polite"
    )
    server.start()
    yield server
    server.stop()


def test_the_page_keeps_following_a_job_through_a_429(
    rate_limited: LiveServer, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    document = tmp_path / "ledger.pdf"  # long enough that the job is still running when polls get 429
    document.write_bytes(
        make_pdf(
            [
                f"Ledger page {n}. The west orchard sold {n * 7} crates of pears to buyer {n}."
                for n in range(80)
            ]
        )
    )
    driver.get(rate_limited.url + "/")
    driver.find_element(By.ID, "api-key").send_keys(POLITE_KEY)
    driver.find_element(By.ID, "files").send_keys(str(document))
    driver.find_element(By.ID, "upload-btn").click()
    job = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs li[data-state]"))[
        0
    ]
    assert job.get_attribute("data-state") in ("queued", "running")
    with rate_limited.client(POLITE_KEY) as client:  # the same key: the page's next polls get 429
        assert any(client.get("/v1/documents").status_code == 429 for _ in range(8))
    WebDriverWait(driver, 30).until(lambda d: job.get_attribute("data-waiting") == "true")
    assert job.get_attribute("data-state") in ("queued", "running")  # a 429 is "later", not "failed"
    WebDriverWait(driver, 120).until(lambda d: job.get_attribute("data-state") in ("succeeded", "failed"))
    assert job.get_attribute("data-state") == "succeeded", job.text
    assert "status=429" in rate_limited.log_text()
