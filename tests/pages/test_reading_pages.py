"""Notifications, search, the timeline's reading mark and "sync now" (issue 12): pages and
forms through the test client, with hostile input."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app.core.base.fsio import file_lock
from app.core.identity.identities import Identities
from app.core.network.contacts import Contacts
from app.core.posts.notices import NoticeState
from tests.helpers.web_pages import HTML, PageNode, assert_inert, csrf


@pytest.fixture
def node(tmp_path: Path) -> PageNode:
    return PageNode(tmp_path / "node")


NEW_PAGES = ("/people/groups", "/people/sync", "/notifications", "/search?q=x",
             "/people/birthdays", "/people/book", "/me/profiles", "/people/" + "a" * 64)


def test_new_pages_need_a_session_and_keep_the_csp(node: PageNode) -> None:
    stranger = node.app.test_client()
    for path in NEW_PAGES:
        r = stranger.get(path, headers=HTML)
        assert r.status_code == 302 and r.location == "/signin", path
        r = node.client.get(path, headers=HTML)
        assert r.status_code in (200, 404), path
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp, path
        html = r.get_data(as_text=True)
        scripts = re.findall(r"<script[^>]*>", html)  # only the app's own keyboard file
        assert set(scripts) <= {'<script src="/static/keys.js" defer>'}, path
        assert "style=" not in html, path


def test_notifications_count_in_every_header_and_mark_all_read(node: PageNode) -> None:
    ali, bea = node.stranger(1), node.stranger(2)
    mine = node.my_post("my question")
    Contacts(node.dd).put(bea, "http://127.0.0.1:9", node.me)
    node.post_as(ali, int(time.time()), TEXT="an answer", REPLY_POSTSHA=mine)
    node.post_as(ali, int(time.time()), TEXT="just for you", TO_FINGERPRINT=node.me)
    node.post_as(bea, 1000, TEXT="bea's very first")
    for path in ("/", "/people", "/me", "/compose", "/notifications"):
        assert "(3 unread)" in node.page(path), path
    html = node.page("/notifications")
    assert "replied to your post" in html and "wrote to you" in html
    assert "posted for the first time" in html and "an answer" in html
    upto = html.split('name="upto" value="')[1].split('"')[0]
    late = node.post_as(ali, int(time.time()), TEXT="late", TO_FINGERPRINT=node.me)
    r = node.client.post("/notifications/read", headers=HTML,
                         data={"upto": upto, "csrf_token": csrf(node.client)})
    assert r.status_code == 303
    assert "(1 unread)" in node.page("/")  # the one that came after the page was shown
    assert NoticeState(node.dd).seen() and late.sha1 not in NoticeState(node.dd).seen()
    assert node.form("/notifications/read", {"upto": "x"}).status_code == 400
    assert node.client.post("/notifications/read", data={"upto": "9" * 9},
                            headers=HTML).status_code == 400  # no CSRF token
    assert "(1 unread)" in node.page("/")
    node.form("/people/mute", {"fingerprint": ali, "action": "mute"})
    assert "unread)" not in node.page("/")  # muted people do not notify


QUERIES = ['"', '""', "a OR", "NEAR(a b)", "*", "col:x", "^a", "(", "a\x00b", "'; --",
           "{a}: b", "\u202e", "<script>alert(1)</script>", "AND", "-"]


def test_search_finds_words_and_no_input_is_an_error(node: PageNode) -> None:
    ali = node.stranger(1)
    node.post_as(ali, 100, TEXT="the olive harvest")
    node.post_as(ali, 200, TEXT="olives and bread")
    html = node.page("/search?q=olive*")
    assert "the olive harvest" in html and "olives and bread" in html and "2 results" in html
    assert "1 result for" in node.page("/search?q=HARVEST")
    for q in QUERIES:
        r = node.client.get("/search", query_string={"q": q}, headers=HTML)
        assert r.status_code == 200, q
        assert "&lt;script&gt;" in r.get_data(as_text=True) or "<script>" not in q
        assert_inert(r.get_data(as_text=True)) if "<script" in q else None
    assert node.client.get("/search", query_string={"q": "x" * 201},
                           headers=HTML).status_code == 400
    assert node.client.get("/search", query_string={"q": "a " * 17},
                           headers=HTML).status_code == 400
    for before in ("abc", "0", "-5", "9" * 30):
        r = node.client.get("/search", query_string={"q": "olive", "before": before},
                            headers=HTML)
        assert r.status_code == 400, before
    node.form("/people/mute", {"fingerprint": ali, "action": "mute"})
    assert "0 results" in node.page("/search?q=olive")  # the timeline's visibility
    node.form("/people/mute", {"fingerprint": ali, "action": "unmute"})
    node.form("/people/block", {"fingerprint": ali, "action": "block"})
    assert "0 results" in node.page("/search?q=olive")


def test_the_timeline_remembers_where_i_stopped_reading(node: PageNode) -> None:
    ali = node.stranger(1)
    node.post_as(ali, 100, TEXT="old news")
    html = node.page("/")
    cursor = html.split('name="cursor" value="')[1].split('"')[0]
    assert node.form("/read", {"cursor": cursor}).status_code == 303
    assert "Nothing new since you last read" in node.page("/")
    node.post_as(ali, 200, TEXT="fresh news")
    html = node.page("/")
    assert html.index("fresh news") < html.index("You stopped reading here") \
        < html.index("old news")
    assert 'class="post new"' in html
    assert node.form("/read", {"cursor": "garbage"}).status_code == 400


def test_still_syncing_rather_than_nothing_new(node: PageNode) -> None:
    ali = node.stranger(1)
    Contacts(node.dd).put(ali, "http://127.0.0.1:9", node.me)
    node.post_as(ali, 100, TEXT="seen")
    cursor = node.page("/").split('name="cursor" value="')[1].split('"')[0]
    node.form("/read", {"cursor": cursor})
    with file_lock(node.dd.locks / f"sync-{ali}.lock"):  # a sync of ali runs somewhere
        html = node.page("/")
        assert "Still syncing" in html and "Nothing new" not in html
    assert "Nothing new" in node.page("/")


def test_sync_now_shows_progress_until_done(node: PageNode) -> None:
    ali = node.stranger(1)
    Contacts(node.dd).put(ali, "http://127.0.0.1:9", node.me)  # nobody listens there
    assert "No sync started" in node.page("/people/sync")
    with file_lock(node.dd.locks / f"sync-{ali}.lock"):  # hold it: the run must wait
        r = node.form("/people/sync", {}, page="/people")
        assert r.status_code == 303 and r.location == "/people/sync"
        html = node.page("/people/sync")
        assert '<meta http-equiv="refresh"' in html and "running" in html
        assert "Syncing" in html
    deadline = time.monotonic() + 30
    while '<meta http-equiv="refresh"' in node.page("/people/sync"):
        assert time.monotonic() < deadline, "the sync did not finish"
        time.sleep(0.1)
    html = node.page("/people/sync")
    assert "Finished" in html and "failed" in html and "1 of 1 contacts done" in html
    assert node.form("/people/sync", {"fingerprint": "0" * 64}, page="/people").status_code \
        in (400, 404)
    assert node.client.post("/people/sync", headers=HTML).status_code == 400  # no CSRF


def test_reading_forms_need_csrf(node: PageNode) -> None:
    node.post_as(node.stranger(1), 100, TEXT="x", TO_FINGERPRINT=node.me)
    cursor = node.page("/").split('name="cursor" value="')[1].split('"')[0]
    for path, data in [("/read", {"cursor": cursor}), ("/notifications/read", {"upto": "99"}),
                       ("/people/sync", {})]:
        r = node.client.post(path, data=data, headers=HTML)
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), path
    assert "(1 unread)" in node.page("/") and "I have read up to here" in node.page("/")
    assert not (node.dd.state / "reading.json").exists()
    assert not (node.dd.state / "sync_run.json").exists()


def test_a_damaged_notifications_file_costs_the_count_not_the_pages(node: PageNode) -> None:
    node.post_as(node.stranger(1), 100, TEXT="x", TO_FINGERPRINT=node.me)
    assert "(1 unread)" in node.page("/")
    (node.dd.state / "notifications.json").write_text("{not json")
    html = node.page("/me")
    assert "unread)" not in html
    r = node.client.get("/notifications", headers=HTML)  # the page itself says what is wrong
    assert r.status_code == 500 and "notifications.json" in r.get_data(as_text=True)


FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)


def test_every_post_form_on_every_page_carries_a_csrf_token(node: PageNode) -> None:
    ali = node.stranger(1)
    Contacts(node.dd).put(ali, "http://127.0.0.1:9", node.me)
    Identities(node.dd).create_group("friends")
    Identities(node.dd).add_member("friends", ali)
    node.post_as(ali, 100, TEXT="hello", TO_FINGERPRINT=node.me)
    forms = 0
    for path in ("/", "/people", f"/people/{ali}", "/people/groups", "/people/sync",
                 "/notifications", "/search?q=hello", "/me", "/me/profiles", "/compose"):
        for attrs, body in FORM_RE.findall(node.page(path)):
            if 'method="post"' in attrs:
                forms += 1
                assert 'name="csrf_token"' in body, (path, attrs)
    assert forms > 25
