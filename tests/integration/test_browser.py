"""The web pages in a real browser: two real nodes (gunicorn admin and peer, scheduler) on
free loopback ports, headless Chromium (Debian's) driven by Playwright, two browser contexts.

Ahmed signs in with the one-time URL ``diwan open`` prints, unlocks, posts a text with a
phone photo (GPS in its EXIF) and its alt text; Basant, in her own context, syncs, sees the
image rendered (loaded, natural size, no EXIF left) and replies with the keyboard (j, r,
Ctrl+Enter); Ahmed syncs and sees the reply in the thread; they exchange a private
message through the chat pages; Basant blocks Camal (an identity on Ahmed's node she
follows) and Camal's post leaves her timeline. axe-core checks every page for serious or
critical violations; no page logs a console error (a CSP violation would). Screenshots go to
the test's temporary directory; ``make screenshots`` sets ``SCREENSHOT_DIR`` to keep them.
Without Playwright, Chromium or axe-core the test skips saying what to install; with
``CI=true`` it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import browser as chrome
from tests.helpers.datadirs import PASSWORD
from tests.helpers.images import exif_of, jpeg_with_gps

from .conftest import NodeFactory
from .harness import VENV_BIN, Node

pytestmark = [pytest.mark.integration, pytest.mark.slow]
VIEWPORT = {"width": 1000, "height": 900}


@pytest.fixture
def chromium() -> Iterator[Any]:
    missing = chrome.missing()
    if missing is not None:
        message = f"the browser test needs {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: it must run here)")
        pytest.skip(message)
    with chrome.chromium() as browser:
        yield browser


def login_url(node: Node) -> str:
    out = subprocess.run([str(VENV_BIN / "diwan"), "--data-dir", str(node.root), "--json",
                          "open"], capture_output=True, text=True, check=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")})
    return str(json.loads(out.stdout)["url"])


def api(node: Node, method: str, path: str, **kw: Any) -> Any:
    r = node.admin(method, path, **kw)
    assert r.status_code < 300, (node.name, method, path, r.status_code, r.text)
    return r.json() if r.content else None


class Person:
    """One person's browser context on their node, collecting console errors."""

    def __init__(self, browser: Any, node: Node, fp: str, shots: Path) -> None:
        self.node, self.fp, self.shots = node, fp, shots
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"{m.text} at {m.location.get('url')}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(
            f"{r.status} {r.url}"))

    def go(self, path: str) -> Any:
        self.page.goto(self.node.admin_url + path)
        return self.page

    def sign_in_and_unlock(self) -> None:
        page = self.page
        page.goto(login_url(self.node))
        assert page.url == self.node.admin_url + "/"  # the code left the address bar
        cookie = next(c for c in self.context.cookies()
                      if c["name"] == f"diwan_session_{self.node.admin_port}")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        self.go("/me")
        form = page.locator(f"form[action='/unlock']:has(input[value='{self.fp}'])")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button").click()
        page.wait_for_selector(f"form[action='/lock']:has(input[value='{self.fp}'])")

    def shoot(self, name: str) -> None:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        if keep := os.environ.get("SCREENSHOT_DIR"):
            shutil.copy(path, Path(keep) / path.name)


def _image_state(page: Any, selector: str) -> list[Any]:
    return page.eval_on_selector(selector, "i => [i.complete, i.naturalWidth, "
                                           "i.naturalHeight, i.alt]")


def test_two_people_post_reply_message_and_block_in_real_browsers(
        chromium: Any, make_node: NodeFactory, tmp_path: Path) -> None:
    a_node, b_node = make_node("ahmed"), make_node("basant")
    ahmed = api(a_node, "POST", "/identities", json={"password": PASSWORD})["fingerprint"]
    camal = api(a_node, "POST", "/identities", json={"password": PASSWORD})["fingerprint"]
    basant = api(b_node, "POST", "/identities", json={"password": PASSWORD})["fingerprint"]
    api(a_node, "PUT", f"/contacts/{basant}", json={"address": b_node.peer_url,
                                                   "identity": ahmed})
    for fp, name in ((ahmed, "Ahmed"), (camal, "Camal")):
        api(b_node, "PUT", f"/contacts/{fp}", json={"address": a_node.peer_url,
                                                   "identity": basant})
        api(b_node, "PUT", f"/petnames/{fp}", json={"petname": name})
        api(a_node, "PUT", f"/petnames/{fp}", json={"petname": name})
    api(a_node, "PUT", f"/petnames/{basant}", json={"petname": "Basant"})
    api(b_node, "PUT", f"/petnames/{basant}", json={"petname": "Basant"})
    api(a_node, "POST", "/posts", json={"fingerprint": camal, "password": PASSWORD,
                                        "text": "Camal was here"})
    shots = tmp_path / "shots"
    shots.mkdir()
    a = Person(chromium, a_node, ahmed, shots)
    b = Person(chromium, b_node, basant, shots)

    # Ahmed: one-time URL, unlock once, a post with a phone photo and its alt text
    a.sign_in_and_unlock()
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(jpeg_with_gps((320, 180)))
    page = a.go("/compose")
    page.select_option("#compose-author", ahmed)
    page.fill("#compose-text", "Hello from Ahmed <b>not bold</b>")
    page.set_input_files("#compose-media1", str(photo))
    page.fill("#compose-alt1", "A red square on a roof")
    a.shoot("compose")
    page.click("button[data-send]")
    page.wait_for_url("**/thread/*")
    root_path = page.url.removeprefix(a_node.admin_url)
    assert _image_state(page, "article.post img") == [True, 320, 180, "A red square on a roof"]

    # Basant: syncs, sees the image and Camal's post, replies with the keyboard
    api(b_node, "POST", "/sync", json={})
    b.sign_in_and_unlock()
    page = b.go("/")
    first = page.locator("article.post").first
    assert first.locator(".text").inner_text() == "Hello from Ahmed <b>not bold</b>"
    assert _image_state(page, "article.post img") == [True, 320, 180, "A red square on a roof"]
    served = page.request.get(page.eval_on_selector("article.post img", "i => i.src")).body()
    assert exif_of(served) == {} and b"DiwanTestCam" not in served  # stripped before signing
    assert "Camal was here" in page.inner_text("main")
    b.shoot("home")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.matches('article.post.current')")
    page.keyboard.press("r")
    page.wait_for_url("**/compose?reply_to=*")
    page.select_option("select[name=author]", basant)
    page.fill("textarea[name=text]", "What a view, Ahmed!")
    page.focus("textarea[name=text]")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/thread/*")

    # Ahmed syncs and sees the reply under his post
    api(a_node, "POST", "/sync", json={})
    page = a.go(root_path)
    assert "What a view, Ahmed!" in page.inner_text("section[aria-label=Replies]")
    a.shoot("thread")
    # ... and is told: the header counts it unread, the notifications page lists it
    assert "unread" in page.inner_text("nav[aria-label=Main]")
    page = a.go("/notifications")
    unread = page.locator("section.notice.unread")
    assert unread.count() >= 1 and "What a view, Ahmed!" in unread.first.inner_text()
    page.click("button:has-text('Mark all read')")
    page.wait_for_url("**/notifications*")
    assert page.locator("section.notice.unread").count() == 0

    # a private message and its answer, through the compose and chat pages
    page = a.go("/compose")
    page.select_option("#compose-author", ahmed)
    page.fill("#compose-text", "Just between us: the roof is ours.")
    page.check("input[name=audience][value=people]")
    page.fill("#compose-to", "Basant")
    page.click("button[value=preview]")
    assert "only Basant (a private message)" in page.inner_text(".preview")
    page.click("button[data-send]")
    page.wait_for_url("**/thread/*")
    api(b_node, "POST", "/sync", json={})
    page = b.go("/chats")
    page.click("ul.chats a")
    assert "the roof is ours" in page.inner_text("main")
    page.select_option("select[name=author]", basant)
    page.fill("textarea[name=text]", "Our secret.")
    page.click("button[data-send]")
    page.wait_for_url("**/thread/*")
    api(a_node, "POST", "/sync", json={})
    page = a.go("/chats")
    page.click("ul.chats a")
    assert "Our secret." in page.inner_text("main")
    a.shoot("chat")

    # Basant blocks Camal: his post leaves her timeline
    page = b.go("/people")
    b.shoot("people")
    page.locator("tr", has_text="Camal").locator("button", has_text="Block").click()
    page.wait_for_url("**/people")
    assert "Camal was here" not in b.go("/").inner_text("main")

    # without JavaScript the same forms work: Ahmed posts from a browser with scripts off
    plain = chromium.new_context(java_script_enabled=False, viewport=VIEWPORT).new_page()
    plain.goto(login_url(a_node))
    plain.goto(a_node.admin_url + "/compose")
    plain.select_option("#compose-author", ahmed)
    plain.fill("#compose-text", "Sent with scripts off")
    plain.fill("#compose-password", PASSWORD)  # a new session: not unlocked, the password once
    plain.click("button[data-send]")
    plain.wait_for_url("**/thread/*")
    assert "Sent with scripts off" in plain.inner_text("main")

    # accessibility: no serious or critical axe-core violation on any page
    pages = ["/", root_path, "/compose", "/chats",
             page_path(b, "ul.chats a", "/chats"), "/people", "/me", "/keys", "/thread/" + "0" * 40]
    # and every page the header links to (pages added later are checked without a change)
    nav = b.go("/").eval_on_selector_all("header nav a", "links => links.map(a => a.pathname)")
    pages += [p for p in nav if p not in pages]
    found = {}
    for path in pages:
        b.go(path)
        if violations := chrome.axe_violations(b.page):
            found[path] = violations
    signin = chromium.new_context().new_page()
    signin.goto(a_node.admin_url + "/signin")
    if violations := chrome.axe_violations(signin):
        found["/signin"] = violations
    assert found == {}
    b.go("/keys")
    b.shoot("keys")
    # the only failed load is the error page's own 404; no CSP violation, no script error
    errors = [e for e in a.errors + b.errors
              if not e.startswith("404 ") or not e.endswith("/thread/" + "0" * 40)]
    assert errors == ["Failed to load resource: the server responded with a status of 404 "
                      f"(NOT FOUND) at {b_node.admin_url}/thread/{'0' * 40}"], "\n".join(errors)
    assert "code=" not in a_node.log("admin")  # the login code never reached the access log


def page_path(person: Person, selector: str, start: str) -> str:
    """The path of the first link ``selector`` on the page ``start``."""
    href = person.go(start).get_attribute(selector, "href")
    assert href
    return str(href)
