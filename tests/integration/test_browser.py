"""The web pages in a real browser: headless Chromium (Debian's, with its chromedriver)
against a real node (gunicorn admin and peer, scheduler) on free loopback ports.

Signs in with the one-time URL that ``diwan open`` prints, unlocks the identity,
posts a text with an image, and finds both in the timeline (the ``<img>`` loaded
with its natural size). The screenshot goes to the test's temporary directory
(``SCREENSHOT_DIR`` keeps a copy elsewhere). Without Chromium, its driver or
Selenium the test skips saying what to install; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.datadirs import PASSWORD

from .conftest import NodeFactory
from .harness import VENV_BIN

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1000,900")
# a 16x12 PNG (opaque blue) made with zlib, so the natural size is known
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAMCAIAAADkharWAAAAFUlEQVR4nGOQj+8mCTGMahjVgB0BAP8ZxsH+67jO"
    "AAAAAElFTkSuQmCC")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium (pip install -e '.[test]')"
    if CHROMIUM is None or DRIVER is None:
        return "Chromium and its driver (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        message = f"the browser test needs {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: it must run here)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _login_url(root: Path) -> str:
    out = subprocess.run([str(VENV_BIN / "diwan"), "--data-dir", str(root), "--json", "open"],
                         capture_output=True, text=True, check=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")})
    return str(json.loads(out.stdout)["url"])


def test_sign_in_unlock_post_and_see_it(browser: Any, make_node: NodeFactory,
                                        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    node = make_node("ahmed")
    fp = node.admin("POST", "/identities", json={"password": PASSWORD}).json()["fingerprint"]
    login = _login_url(node.root)
    assert login.startswith(node.admin_url + "/login?code=")

    browser.get(login)
    assert browser.current_url == node.admin_url + "/"  # the code left the address bar
    assert browser.find_element(By.TAG_NAME, "h1").text == "Home"
    cookie = browser.get_cookie("diwan_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    browser.get(node.admin_url + "/me")
    browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/unlock'] button").click()
    WebDriverWait(browser, 30).until(lambda b: "Lock" in b.find_element(By.TAG_NAME, "body").text)
    assert "unlocked" in browser.find_element(By.TAG_NAME, "body").text, browser.page_source

    image = tmp_path / "blue.png"
    image.write_bytes(PNG)
    browser.get(node.admin_url + "/compose")
    form = browser.find_element(By.CSS_SELECTOR, "form.compose")
    form.find_element(By.NAME, "text").send_keys("Hello from a real browser <b>not bold</b>")
    form.find_element(By.NAME, "media").send_keys(str(image))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda b: "/thread/" in b.current_url)

    browser.get(node.admin_url + "/")
    text = browser.find_element(By.CSS_SELECTOR, ".post .text").text
    assert text == "Hello from a real browser <b>not bold</b>"  # shown as text, not markup
    img = browser.find_element(By.CSS_SELECTOR, ".post img")
    size = browser.execute_script(
        "return [arguments[0].complete, arguments[0].naturalWidth, arguments[0].naturalHeight]",
        img)
    assert size == [True, 16, 12]
    assert fp[:16] in browser.find_element(By.CSS_SELECTOR, ".post .author").text
    shot = tmp_path / "home.png"
    assert browser.save_screenshot(str(shot))
    if keep := os.environ.get("SCREENSHOT_DIR"):
        shutil.copy(shot, Path(keep) / "home.png")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # no CSP violation, no failed request
    assert "code=" not in node.log("admin")  # the login code never reached the access log
