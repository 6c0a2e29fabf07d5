"""The page at ``/`` in headless Chromium: upload a document, ask, see the cited answer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import ALPHA_KEY, LiveServer
from tests.api.pdfgen import make_pdf

pytestmark = pytest.mark.slow

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
