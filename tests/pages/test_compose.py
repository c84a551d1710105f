"""The compose form through the Flask test client: alt text, content warning, link,
audience with its preview, drafts kept until sent, image metadata stripped."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_admin_app
from app.core.base.websessions import issue_login_code
from app.core.identity.identities import Identities
from app.core.identity.petnames import Petnames
from app.core.posts.authoring import Draft, publish
from app.core.posts.timeline import Timeline
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.images import CAMERA, PNG, exif_of, jpeg_with_gps

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
HTML = {"Accept": "text/html"}
Node = tuple[FlaskClient, str, list[str]]


def csrf(client: FlaskClient, path: str = "/compose") -> str:
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match[1]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Node:
    """A signed-in browser, one own identity, two other people (Basant and Camal)."""
    root = tmp_path_factory.mktemp("node")
    dd = make_datadir(root)
    client = create_admin_app({"data_dir": str(root)}).test_client()
    ids = Identities(dd)
    fp = ids.create(PASSWORD)
    others = []
    for name in ("Basant", "Camal"):
        other = ids.create(PASSWORD + name)
        dd.identities.joinpath(other).unlink()  # someone else's key
        Petnames(dd).set(other, name)
        others.append(other)
    ids.create_group("family")
    ids.add_member("family", others[0])
    ids.add_member("family", others[1])
    assert client.get(f"/login?code={issue_login_code(dd)}").status_code == 302
    return client, fp, others


def _send(client: FlaskClient, **fields: object) -> tuple[int, str, str]:
    data = {"csrf_token": csrf(client), "password": PASSWORD, **fields}
    r = client.post("/compose", data=data, content_type="multipart/form-data", headers=HTML)
    return r.status_code, r.location or "", r.get_data(as_text=True)


def _stored(client: FlaskClient, location: str) -> dict[str, object]:
    dd = client.application.config["DIWAN"]
    post = Timeline(dd).read(Timeline(dd).index.get(location.rsplit("/", 1)[1]))
    assert post is not None
    return dict(post.attributes)


def test_alt_text_warning_and_link_travel_in_the_post_and_show(node: Node) -> None:
    client, fp, _ = node
    status, where, _ = _send(client, author=fp, text="the view from the roof",
                             warning="heights", link="https://example.org/roof",
                             media1=(io.BytesIO(PNG), "roof.png"), alt1="Cairo at dusk")
    assert status == 303
    attrs = _stored(client, where)
    assert attrs["MEDIA_ALT_TEXT"] == "Cairo at dusk" and attrs["CONTENTWARNING_TEXT"] == "heights"
    assert attrs["LINK_URL"] == "https://example.org/roof" and "MEDIA_PNG" in attrs
    html = client.get(where).get_data(as_text=True)
    cw = html.index('<details class="cw"><summary>Content warning: <bdi dir="auto">heights</bdi>')
    assert cw < html.index("the view from the roof") < html.index("</details>")
    assert cw < html.index('alt="Cairo at dusk"') < html.index("</details>")
    assert 'href="https://example.org/roof"' in html
    assert ">Cairo at dusk<" not in html  # the alt text is not shown again as a field


def test_hostile_alt_and_warning_are_escaped(node: Node) -> None:
    client, fp, _ = node
    dd = client.application.config["DIWAN"]
    sha = publish(dd, fp, PASSWORD, Draft(
        text="x", media=[("MEDIA", PNG)],
        attributes={"MEDIA_ALT_TEXT": '"><script>alert(1)</script>',
                    "CONTENTWARNING_TEXT": "</summary><img src=x onerror=alert(2)>"})).sha1
    html = client.get(f"/thread/{sha}").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert 'alt="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_audience_preview_for_everyone_group_and_people(node: Node) -> None:
    client, fp, (basant, camal) = node
    for fields, expected in [
        ({"audience": "everyone"}, "everyone: a public post"),
        ({"audience": "group", "group": "family"}, "only Basant, Camal (a group message)"),
        ({"audience": "people", "to": "Camal"}, "only Camal (a private message)"),
        ({"audience": "people", "to": ""}, "nobody yet: name at least one person"),
    ]:
        status, _, html = _send(client, author=fp, text="draft", action="preview", **fields)
        assert status == 200 and f'This goes to <bdi dir="auto">{expected}' in html, expected
    status, where, _ = _send(client, author=fp, text="family news", audience="group",
                             group="family")
    attrs = _stored(client, where)
    assert {attrs["TO_FINGERPRINT"], attrs["TO2_FINGERPRINT"]} == {basant, camal}


def test_a_draft_is_kept_until_sent_even_when_sending_fails(node: Node) -> None:
    client, fp, _ = node
    dd = client.application.config["DIWAN"]
    status, _, _ = _send(client, author=fp, text="half a thought", warning="w",
                         media1=(io.BytesIO(PNG), "a.png"), alt1="a dot", action="preview")
    assert status == 200
    path = dd.state / "web" / "drafts" / "compose.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (dd.state / "web" / "drafts").stat().st_mode & 0o777 == 0o700
    page = client.get("/compose").get_data(as_text=True)  # a new page load finds it
    assert "half a thought</textarea>" in page and 'value="a dot"' in page
    assert 'name="keep0" value="1" checked' in page
    # a wrong password: nothing is signed and the draft stays
    status, _, _ = _send(client, author=fp, text="half a thought, more", keep0="1",
                         kept_alt0="a dot", password="wrong password!")
    assert status == 403 and path.exists()
    assert "half a thought, more" in client.get("/compose").get_data(as_text=True)
    status, where, _ = _send(client, author=fp, text="whole thought", keep0="1",
                             kept_alt0="a dot")
    assert status == 303 and not path.exists()
    assert _stored(client, where)["MEDIA_ALT_TEXT"] == "a dot"
    assert "whole thought</textarea>" not in client.get("/compose").get_data(as_text=True)


def test_reply_and_chat_boxes_keep_their_own_drafts(node: Node) -> None:
    client, fp, _ = node
    dd = client.application.config["DIWAN"]
    sha = publish(dd, fp, PASSWORD, Draft(text="root")).sha1
    _send(client, author=fp, text="a reply in progress", reply_to=sha, place=f"reply-{sha}",
          action="preview")
    assert "a reply in progress</textarea>" in client.get(f"/thread/{sha}").get_data(
        as_text=True)
    assert "a reply in progress" not in client.get("/compose").get_data(as_text=True)
    status, _, _ = _send(client, author=fp, text="x", place="../../etc/passwd")
    assert status == 400


def test_the_pages_strip_gps_from_a_photo(node: Node) -> None:
    client, fp, _ = node
    photo = jpeg_with_gps()
    status, where, _ = _send(client, author=fp, text="holiday",
                             media1=(io.BytesIO(photo), "IMG_0001.jpg"))
    assert status == 303
    served = client.get(client.get(where).get_data(as_text=True).split('<img src="')[1]
                        .split('"')[0]).data
    assert exif_of(served) == {} and CAMERA.encode() not in served and served != photo


def test_unknown_audience_and_too_large_files_are_400(node: Node) -> None:
    client, fp, _ = node
    assert _send(client, author=fp, text="x", audience="aliens")[0] == 400
    assert _send(client, author=fp, text="x", audience="group", group="nope")[0] in (400, 404)
    status, _, html = _send(client, author=fp, text="x", link="javascript:alert(1)")
    assert status == 400 and "http" in html  # the link rule of docs/protocol.md, as text


def test_the_keyboard_help_page_and_the_shortcut_hooks(node: Node) -> None:
    client, fp, _ = node
    html = client.get("/keys").get_data(as_text=True)
    for key in ("<kbd>j</kbd>", "<kbd>k</kbd>", "<kbd>r</kbd>", "<kbd>n</kbd>", "<kbd>?</kbd>",
                "<kbd>Ctrl</kbd>+<kbd>Enter</kbd>"):
        assert key in html
    home = client.get("/").get_data(as_text=True)
    assert "data-key-new" in home and "data-key-help" in home and 'href="#main"' in home
    assert "data-send" in client.get("/compose").get_data(as_text=True)


def test_a_session_is_bound_to_the_port_it_signed_in_on(tmp_path: Path) -> None:
    """T55: browsers send 127.0.0.1 cookies to every port; the cookie is named for the admin
    port and the server-side record accepts it on that port only."""
    dd = make_datadir(tmp_path / "n")
    app = create_admin_app({"data_dir": str(tmp_path / "n")})
    owner = app.test_client()
    r = owner.get(f"/login?code={issue_login_code(dd)}", headers={"Host": "127.0.0.1:8888"})
    assert r.status_code == 302 and r.headers["Set-Cookie"].startswith("diwan_session_8888=")
    assert owner.get("/", headers={"Host": "127.0.0.1:8888"}).status_code == 200
    stolen = owner.get_cookie("diwan_session_8888", domain="127.0.0.1")
    assert stolen is not None
    other_port = app.test_client()  # what a listener on another port received, replayed
    other_port.set_cookie("diwan_session_9999", stolen.value, domain="127.0.0.1")
    assert other_port.get("/", headers={"Host": "127.0.0.1:9999"}).status_code == 302
    record = next((dd.state / "web" / "sessions").iterdir()).read_text()
    assert '"port": 8888' in record


def test_links_to_this_machine_are_text_not_links(node: Node) -> None:
    client, fp, _ = node
    dd = client.application.config["DIWAN"]
    local = ["http://127.0.0.1:9999/x", "http://localhost:8000/", "http://[::1]:81/",
             "http://evil.localhost/", "http://127.8.9.10/", "http://0.0.0.0:5000/"]
    for url in local:
        sha = publish(dd, fp, PASSWORD, Draft(text="see", attributes={"LINK_URL": url})).sha1
        html = client.get(f"/thread/{sha}").get_data(as_text=True)
        assert f'href="{url}"' not in html and url in html, url
    sha = publish(dd, fp, PASSWORD, Draft(attributes={"LINK_URL": "https://example.org/"})).sha1
    assert 'href="https://example.org/"' in client.get(f"/thread/{sha}").get_data(as_text=True)


def test_the_favicon_is_there_without_a_session(tmp_path: Path) -> None:
    make_datadir(tmp_path / "n")
    client = create_admin_app({"data_dir": str(tmp_path / "n")}).test_client()
    r = client.get("/favicon.ico")
    assert r.status_code == 301 and r.location.endswith("/static/favicon.svg")


def test_the_profile_form_publishes_a_public_profile(node: Node) -> None:
    client, fp, _ = node
    r = client.post("/profile", data={"author": fp, "profile_name": "Ahmed Ali",
                                      "password": PASSWORD, "csrf_token": csrf(client)})
    assert r.status_code == 303
    assert _stored(client, r.location)["PROFILENAME"] == "Ahmed Ali"
    r = client.post("/profile", data={"author": fp, "profile_name": " ", "password": PASSWORD,
                                      "csrf_token": csrf(client)}, headers=HTML)
    assert r.status_code == 400


def test_a_file_over_max_post_bytes_is_refused_at_the_edge(tmp_path: Path) -> None:
    dd = make_datadir(tmp_path / "n", max_post_bytes=2000)
    client = create_admin_app({"data_dir": str(tmp_path / "n"), "max_post_bytes": 2000}
                              ).test_client()
    fp = Identities(dd).create(PASSWORD)
    client.get(f"/login?code={issue_login_code(dd)}")
    status, _, html = _send(client, author=fp, media1=(io.BytesIO(b"x" * 2001), "big.bin"))
    assert status == 400 and "max_post_bytes" in html
    status, _, html = _send(client, author=fp, media1=(io.BytesIO(b"x" * 2000), "edge.bin"),
                            action="preview")
    assert status == 200 and "2000 bytes" in html  # kept in the draft; the post limit
    # (the whole signed file) is checked when it is sent
