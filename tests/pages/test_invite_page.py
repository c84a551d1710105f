"""The invite page (app/pages/invites.py): make an invite (line, QR code, PNG) and accept
a friend's, through the Flask test client with a signed-in browser."""

from __future__ import annotations

import html
import re
from pathlib import Path

from flask.testing import FlaskClient

from app import create_admin_app
from app.core.base.websessions import issue_login_code
from app.core.identity.identities import Identities
from app.core.network.contacts import Contacts
from tests.helpers.datadirs import PASSWORD, make_datadir

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LINE_RE = re.compile(r'<textarea id="made-text" readonly rows="4">([^<]+)</textarea>')
HTML = {"Accept": "text/html"}


def browser(root: Path, port: int) -> tuple[FlaskClient, str]:
    settings = {"peer_host": "127.0.0.1", "peer_port": port}
    make_datadir(root, **settings)
    client = create_admin_app({"data_dir": str(root), **settings}).test_client()
    fp = Identities(client.application.config["DIWAN"]).create(PASSWORD)
    client.get(f"/login?code={issue_login_code(client.application.config['DIWAN'])}")
    return client, fp


def csrf(client: FlaskClient) -> str:
    match = CSRF_RE.search(client.get("/invite").get_data(as_text=True))
    assert match
    return match[1]


def test_make_and_accept_an_invite(tmp_path: Path) -> None:
    ahmed, afp = browser(tmp_path / "ahmed", 38889)
    basant, bfp = browser(tmp_path / "basant", 38890)
    page = ahmed.get("/invite")
    assert page.status_code == 200 and 'href="/invite"' in page.get_data(as_text=True)
    r = ahmed.post("/invite", data={"identity": afp, "token": "1", "password": PASSWORD,
                                    "csrf_token": csrf(ahmed)})
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "<svg" in body and "http://127.0.0.1:38889" in body
    match = LINE_RE.search(body)
    assert match
    line = html.unescape(match[1])
    png = ahmed.post("/invite/qr.png", data={"invite": line, "csrf_token": csrf(ahmed)})
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
    assert ahmed.post("/invite/qr.png", data={"invite": "<script>", "csrf_token":
                                              csrf(ahmed)}, headers=HTML).status_code == 400

    bad = line[:40] + ("A" if line[40] != "A" else "B") + line[41:]
    refused = basant.post("/invite/redeem", data={"invite": bad, "identity": bfp,
                                                  "csrf_token": csrf(basant)}, headers=HTML)
    assert refused.status_code == 400 and "invite" in refused.get_data(as_text=True)
    assert Contacts(basant.application.config["DIWAN"]).list() == []
    ok = basant.post("/invite/redeem", data={"invite": line, "identity": bfp,
                                             "csrf_token": csrf(basant)})
    text = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "Now following" in text and "waiting" in text
    assert Contacts(basant.application.config["DIWAN"]).get(afp).identity == bfp


def test_making_an_invite_needs_a_password_or_an_unlocked_identity(tmp_path: Path) -> None:
    ahmed, afp = browser(tmp_path / "ahmed", 38891)
    r = ahmed.post("/invite", data={"identity": afp, "csrf_token": csrf(ahmed)}, headers=HTML)
    assert r.status_code == 400 and "password" in r.get_data(as_text=True)
    r = ahmed.post("/invite", data={"identity": afp, "password": "wrong password",
                                    "csrf_token": csrf(ahmed)}, headers=HTML)
    assert r.status_code == 403
    assert ahmed.post("/unlock", data={"fingerprint": afp, "password": PASSWORD,
                                       "csrf_token": csrf(ahmed)}).status_code == 303
    r = ahmed.post("/invite", data={"identity": afp, "csrf_token": csrf(ahmed)})
    assert r.status_code == 200 and "diwan-invite:" in r.get_data(as_text=True)
