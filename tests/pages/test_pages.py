"""The web pages through the Flask test client: sign-in, cookies, CSRF, CSP, escaping, unlock."""

from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_admin_app
from app.core.base.errors import BadPost
from app.core.base.websessions import issue_login_code
from app.core.identity.identities import Identities
from app.core.posts.authoring import Draft, delete_own, publish
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.post_kit import PostKit

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
                       "hQGAhKmMIQAAAABJRU5ErkJggg==")
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def csrf(client: FlaskClient, path: str = "/compose") -> str:
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match[1]


def sign_in(client: FlaskClient) -> TestResponse:
    dd = client.application.config["DIWAN"]
    return client.get(f"/login?code={issue_login_code(dd)}")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> tuple[FlaskClient, str]:
    """A signed-in browser on a node with one own identity (Argon2id once per module)."""
    root = tmp_path_factory.mktemp("node")
    make_datadir(root)
    client = create_admin_app({"data_dir": str(root)}).test_client()
    fp = Identities(client.application.config["DIWAN"]).create(PASSWORD)
    assert sign_in(client).status_code == 302
    return client, fp


def fresh(tmp_path: Path, **settings: object) -> FlaskClient:
    make_datadir(tmp_path / "n", **settings)
    return create_admin_app({"data_dir": str(tmp_path / "n"), **settings}).test_client()


# --- signing in ------------------------------------------------------------------------------

def test_pages_need_a_session(tmp_path: Path) -> None:
    client = fresh(tmp_path)
    for path in ("/", "/compose", "/chats", "/people", "/me", "/thread/" + "0" * 40):
        r = client.get(path)
        assert r.status_code == 302 and r.location == "/signin", path


def test_login_code_sets_a_strict_cookie_and_strips_the_code(tmp_path: Path) -> None:
    client = fresh(tmp_path)
    r = sign_in(client)
    assert r.status_code == 302 and r.location == "/"  # the code leaves the address bar
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("diwan_session_80=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert client.get("/").status_code == 200


def test_a_login_code_works_once(tmp_path: Path) -> None:
    client = fresh(tmp_path)
    code = issue_login_code(client.application.config["DIWAN"])
    assert client.get(f"/login?code={code}").status_code == 302
    other = client.application.test_client()
    r = other.get(f"/login?code={code}")
    assert r.status_code == 403
    assert other.get("/").status_code == 302


def test_an_expired_login_code_is_refused(tmp_path: Path) -> None:
    client = fresh(tmp_path, web_login_code_ttl=0)  # expired the moment it is made
    assert sign_in(client).status_code == 403
    assert client.get("/").status_code == 302


def test_codes_are_stored_hashed_and_private(tmp_path: Path) -> None:
    client = fresh(tmp_path)
    dd = client.application.config["DIWAN"]
    code = issue_login_code(dd)
    ident, _, secret = code.partition(".")
    path = dd.state / "web" / "codes" / ident
    assert path.stat().st_mode & 0o777 == 0o600
    assert secret not in path.read_text()


def test_sign_in_with_the_admin_token(tmp_path: Path) -> None:
    client = fresh(tmp_path)
    dd = client.application.config["DIWAN"]
    bad = client.post("/signin", data={"token": "0" * 64, "csrf_token": csrf(client, "/signin")})
    assert bad.status_code == 403 and client.get("/").status_code == 302
    r = client.post("/signin", data={"token": dd.admin_token,
                                     "csrf_token": csrf(client, "/signin")})
    assert r.status_code == 302 and client.get("/").status_code == 200


def test_sign_out_ends_the_session_on_the_server(tmp_path: Path) -> None:
    client = fresh(tmp_path)
    sign_in(client)
    stolen = client.get_cookie("diwan_session_80").value
    r = client.post("/signout", data={"csrf_token": csrf(client, "/")})
    assert r.status_code == 302 and r.location == "/signin"
    replay = client.application.test_client()
    replay.set_cookie("diwan_session_80", stolen)
    assert replay.get("/").status_code == 302  # the old cookie no longer works


def test_sessions_expire(tmp_path: Path) -> None:
    client = fresh(tmp_path, web_session_ttl=0)
    sign_in(client)
    assert client.get("/").status_code == 302


# --- CSRF, Host, headers ---------------------------------------------------------------------

def test_forms_without_a_csrf_token_are_refused(node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    for path, data in [("/compose", {"author": fp, "text": "x", "password": PASSWORD}),
                       ("/signout", {}), ("/me", {"password": PASSWORD, "repeat": PASSWORD}),
                       ("/people/block", {"fingerprint": fp, "action": "block"})]:
        r = client.post(path, data=data, headers=HTML)
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), path
        r = client.post(path, data={**data, "csrf_token": "forged"}, headers=HTML)
        assert r.status_code == 400, path
    assert client.get("/").status_code == 200  # still signed in


def test_cross_site_form_posts_are_refused_before_csrf(node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    r = client.post("/signout", data={"csrf_token": csrf(client)},
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and client.get("/").status_code == 200


def test_host_allowlist(tmp_path: Path) -> None:
    client = fresh(tmp_path)
    assert client.get("/signin", headers={"Host": "mybox:8888"}).status_code == 403
    allowed = fresh(tmp_path / "b", admin_allowed_hosts="mybox, other")
    assert allowed.get("/signin", headers={"Host": "mybox:8888"}).status_code == 200
    assert allowed.get("/signin", headers={"Host": "evil:8888"}).status_code == 403


def test_every_page_has_a_strict_csp(node: tuple[FlaskClient, str]) -> None:
    client, _ = node
    for path in ("/", "/compose", "/chats", "/people", "/me", "/signin", "/nope"):
        r = client.get(path, headers=HTML)
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin"  # no-referrer makes Origin: null
    html = client.get("/").get_data(as_text=True)
    # the one script is the shortcuts file served by the app itself: no inline script
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/keys.js" defer>']
    assert "</script>" in html and ">\n</script>" not in html and "style=" not in html
    assert "<style" not in html and " on" + "load=" not in html
    with client.get("/static/keys.js") as js:
        assert js.status_code == 200
        assert js.mimetype in ("text/javascript", "application/javascript")


def test_errors_are_html_for_browsers_and_json_for_the_api(node: tuple[FlaskClient, str]) -> None:
    client, _ = node
    r = client.get("/thread/" + "0" * 40, headers=HTML)
    assert r.status_code == 404 and r.mimetype == "text/html"
    assert client.get("/thread/" + "0" * 40).mimetype == "application/json"
    r = client.get("/identities", headers=HTML)  # the API without a token, from a browser
    assert r.status_code == 401 and r.mimetype == "text/html"
    r = client.get("/identities")
    assert r.status_code == 401 and r.get_json()["code"] == 401


# --- content ---------------------------------------------------------------------------------

HOSTILE = ('<script>alert(1)</script><img src=x onerror="alert(2)">'
           '<a href="javascript:alert(3)">x</a>\u202eevil')


def test_hostile_text_is_escaped(node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    dd = client.application.config["DIWAN"]
    sha = publish(dd, fp, PASSWORD, Draft(
        text=HOSTILE, attributes={"X_WORKPLACE": '"><svg onload=alert(4)>'})).sha1
    for path in ("/", f"/thread/{sha}"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "<svg" not in html and 'href="javascript:' not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert 'dir="auto"' in html  # right-to-left overrides stay inside their element


def test_unlock_once_then_post_without_the_password(node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    dd = client.application.config["DIWAN"]
    wrong = client.post("/unlock", data={"fingerprint": fp, "password": "nope",
                                         "csrf_token": csrf(client)})
    assert wrong.status_code == 403
    r = client.post("/unlock", data={"fingerprint": fp, "password": PASSWORD,
                                     "csrf_token": csrf(client)})
    assert r.status_code == 303
    blobs = list((dd.state / "web" / "unlocked").iterdir())
    assert len(blobs) == 1 and blobs[0].stat().st_mode & 0o777 == 0o600
    seed_file = (dd.identities / fp).read_bytes()
    assert blobs[0].read_bytes() not in seed_file  # sealed again under the session key
    r = client.post("/compose", data={"author": fp, "text": "no password needed",
                                      "media1": (io.BytesIO(PNG), "dot.png"),
                                      "csrf_token": csrf(client)},
                    content_type="multipart/form-data")
    assert r.status_code == 303
    thread = client.get(r.location).get_data(as_text=True)
    assert "no password needed" in thread
    src = re.search(r'<img src="([^"]+)"', thread)
    assert src and src[1].endswith("/media/MEDIA_PNG")
    media = client.get(src[1])  # served to the session cookie, with the media headers
    assert media.status_code == 200 and media.data == PNG
    assert media.headers["Content-Security-Policy"] == "sandbox"
    assert client.application.test_client().get(src[1]).status_code == 401  # no cookie
    client.post("/lock", data={"fingerprint": fp, "csrf_token": csrf(client)})
    assert list((dd.state / "web" / "unlocked").iterdir()) == []
    r = client.post("/compose", data={"author": fp, "text": "locked again",
                                      "csrf_token": csrf(client)}, headers=HTML)
    assert r.status_code == 400 and "password" in r.get_data(as_text=True)


def test_people_name_and_block(node: tuple[FlaskClient, str]) -> None:
    client, _ = node
    dd = client.application.config["DIWAN"]
    other = Identities(dd).create(PASSWORD + "2")
    dd.identities.joinpath(other).unlink()  # make it someone else's key
    r = client.post("/people/name", data={"fingerprint": other, "petname": "Basant",
                                          "csrf_token": csrf(client)})
    assert r.status_code == 303 and "Basant" in client.get("/people").get_data(as_text=True)
    client.post("/people/block", data={"fingerprint": other, "action": "block",
                                       "csrf_token": csrf(client)})
    assert Identities(dd).is_blocked(other)


def test_the_reply_box_says_who_will_receive_the_reply(node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    dd = client.application.config["DIWAN"]
    sha = publish(dd, fp, PASSWORD, Draft(text="mine, public")).sha1
    html = client.get(f"/thread/{sha}").get_data(as_text=True)
    assert "This goes to <bdi dir=\"auto\">everyone" in html


# --- edits and deletions (issue 9) --------------------------------------------------------

def test_an_edited_post_shows_an_edited_mark_linking_to_the_earlier_text(
        node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    dd = client.application.config["DIWAN"]
    old = publish(dd, fp, PASSWORD, Draft(text="first wording")).sha1
    new = publish(dd, fp, PASSWORD, Draft(text="second wording", edit=old)).sha1
    home = client.get("/").get_data(as_text=True)
    assert "second wording" in home and "first wording" not in home
    assert f'href="/versions/{new}">edited</a>' in home
    versions = client.get(f"/versions/{new}").get_data(as_text=True)
    assert versions.index("first wording") < versions.index("second wording")


def test_a_thread_whose_root_was_deleted_keeps_the_replies(
        node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    dd = client.application.config["DIWAN"]
    root = publish(dd, fp, PASSWORD, Draft(text="soon gone")).sha1
    reply = publish(dd, fp, PASSWORD, Draft(text="a reply that stays", reply_to=root)).sha1
    delete_own(dd, fp, root, password=PASSWORD)
    page = client.get(f"/thread/{root}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "deleted by its author" in text
    assert "a reply that stays" in text and "soon gone" not in text
    assert client.get(f"/thread/{reply}").status_code == 200


def test_the_thread_page_edits_and_deletes_an_own_post(node: tuple[FlaskClient, str]) -> None:
    client, fp = node
    dd = client.application.config["DIWAN"]
    old = publish(dd, fp, PASSWORD, Draft(text="typo <b>here</b>")).sha1
    page = client.get(f"/thread/{old}").get_data(as_text=True)
    assert "Edit or delete this post" in page and "typo &lt;b&gt;here&lt;/b&gt;" in page
    token = csrf(client, f"/thread/{old}")
    r = client.post(f"/thread/{old}/edit", data={"text": "fixed", "password": PASSWORD,
                                                 "csrf_token": token})
    assert r.status_code == 303
    new = r.location.rsplit("/", 1)[1]
    assert new != old and "fixed" in client.get(f"/thread/{new}").get_data(as_text=True)
    wrong = client.post(f"/thread/{new}/delete", headers=HTML,
                        data={"password": "not the password", "csrf_token": token})
    assert wrong.status_code in (400, 401, 403)
    r = client.post(f"/thread/{new}/delete", data={"password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    for sha in (old, new):  # every version is gone, the record stays
        assert not (dd.posts / fp / sha).exists()
    assert client.get(f"/thread/{new}", headers=HTML).status_code == 404


def test_the_thread_page_removes_someone_elses_post_here_only(
        node: tuple[FlaskClient, str]) -> None:
    client, _ = node
    dd = client.application.config["DIWAN"]
    kit = PostKit(dd.root)
    other = kit.author(7)
    post = kit.post(other, int(time.time()), TEXT="not mine")
    path = dd.posts / other / post.sha1
    page = client.get(f"/thread/{post.sha1}").get_data(as_text=True)
    assert "Remove this post from this node" in page and "Edit or delete" not in page
    no_token = client.post(f"/thread/{post.sha1}/delete", headers=HTML)
    assert no_token.status_code == 400 and path.exists()
    edit = client.post(f"/thread/{post.sha1}/edit", headers=HTML,
                       data={"text": "mine now", "csrf_token": csrf(client)})
    assert edit.status_code == 400 and path.exists()
    r = client.post(f"/thread/{post.sha1}/delete", data={"csrf_token": csrf(client)})
    assert r.status_code == 303 and not path.exists()
    with pytest.raises(BadPost):  # remembered: no sync brings it back
        Ingestor(dd).ingest(post.raw, author=other)
