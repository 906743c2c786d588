"""roofseg review in a real browser (Debian's chromium and chromedriver through selenium): the
page opens, keys decide, the decisions land in SQLite, a reload resumes."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="no chromium and chromedriver here (apt-get install chromium chromium-driver)"
    ),
]


@pytest.fixture
def browser(tmp_path):
    selenium = pytest.importorskip("selenium.webdriver")
    options = selenium.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,800", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = selenium.Chrome(options=options, service=selenium.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(predicate, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_keys_decide_in_the_browser_and_the_decisions_land_in_sqlite(browser, served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    server = served()
    browser.get(server.url)
    assert wait_for(lambda: browser.execute_script("return document.body.dataset.ready") == "1"), browser.page_source
    assert "0 of 3 reviewed" in browser.find_element(By.ID, "count").text
    assert "confidence 0.20" in browser.find_element(By.ID, "what").text  # doubtful first
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("a")
    assert wait_for(lambda: "1 of 3 reviewed" in browser.find_element(By.ID, "count").text)
    body.send_keys("r")
    assert wait_for(lambda: "2 of 3 reviewed" in browser.find_element(By.ID, "count").text)
    body.send_keys("b")  # back to the second, and accept it instead
    body.send_keys("a")
    assert wait_for(lambda: server.review.store.decisions().get("0:2") == "accept")
    rows = dict(sqlite3.connect(tmp_path / "review.sqlite").execute("SELECT building, decision FROM decisions"))
    assert rows == {"0:1": "accept", "0:2": "accept"}
    # a reload resumes where the review was
    browser.refresh()
    assert wait_for(lambda: "2 of 3 reviewed" in browser.find_element(By.ID, "count").text)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ESCAPE)
    assert browser.save_screenshot(str(tmp_path / "review.png"))
