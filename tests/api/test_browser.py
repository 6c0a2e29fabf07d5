"""The page at ``/`` in headless Chromium: upload a document, ask, see the cited answer."""

from __future__ import annotations

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
