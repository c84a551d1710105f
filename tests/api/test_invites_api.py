"""Admin API for invites (POST/GET /invites, POST /contacts with an invite) and for an
identity on several own nodes (GET /identities/<fp>/export, POST /identities/imports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.network.contacts import Contacts
from tests.helpers.clients import AdminClient, assert_error, make_admin_client
from tests.helpers.datadirs import PASSWORD

AHMED_AT = "http://127.0.0.1:18889"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> tuple[AdminClient, AdminClient]:
    ahmed = make_admin_client(tmp_path_factory.mktemp("ahmed"), peer_host="127.0.0.1",
                              peer_port=18889)
    basant = make_admin_client(tmp_path_factory.mktemp("basant"), peer_host="127.0.0.1",
                               peer_port=18890)
    ahmed.identities.create(PASSWORD)
    basant.identities.create(PASSWORD)
    return ahmed, basant


def _invite(admin: AdminClient, **body: object) -> dict[str, object]:
    r = admin.post("/invites", json={"password": PASSWORD, **body})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()  # type: ignore[no-any-return]


def test_make_list_and_redeem(nodes: tuple[AdminClient, AdminClient]) -> None:
    ahmed, basant = nodes
    [fp] = ahmed.identities.own_fingerprints()
    out = _invite(ahmed, expires_in=3600)
    assert out["fingerprint"] == fp and out["addresses"] == [AHMED_AT]
    assert out["one_time_token"] is True and str(out["invite"]).startswith("diwan-invite:")
    assert str(out["qr_svg"]).startswith("<svg")
    listed = ahmed.get("/invites").get_json()["invites"]
    assert listed[0]["state"] == "waiting" and listed[0]["identity"] == fp

    r = basant.post("/contacts", json={"invite": out["invite"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert (body["fingerprint"], body["addresses"], body["created"]) == (fp, [AHMED_AT], True)
    assert body["invite"]["role"] == "invitee" and body["invite"]["state"] == "waiting"
    listed = basant.get("/contacts").get_json()["contacts"]
    assert [c["invite"]["state"] for c in listed] == ["waiting"]


def test_a_tampered_invite_is_a_400_and_nothing_is_stored(
        nodes: tuple[AdminClient, AdminClient]) -> None:
    ahmed, basant = nodes
    text = str(_invite(ahmed, one_time_token=False)["invite"])
    before = Contacts(basant.dd).list()
    i = len(text) // 2
    tampered = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
    body = assert_error(basant.post("/contacts", json={"invite": tampered}), 400)
    assert body["status"] == "bad_invite"
    assert_error(basant.post("/contacts", json={"invite": "http://x:1"}), 400)
    assert_error(basant.post("/contacts", json={}), 400, "invite")
    assert Contacts(basant.dd).list() == before


def test_making_an_invite_needs_the_password(nodes: tuple[AdminClient, AdminClient]) -> None:
    ahmed, _ = nodes
    assert_error(ahmed.post("/invites", json={"password": "not the right one"}), 403)
    assert_error(ahmed.post("/invites", json={"password": PASSWORD, "expires_in": 5}), 400,
                 "expires_in")


def test_export_and_import_an_own_identity(nodes: tuple[AdminClient, AdminClient],
                                           tmp_path: Path) -> None:
    ahmed, _ = nodes
    [fp] = ahmed.identities.own_fingerprints()
    r = ahmed.get(f"/identities/{fp}/export")
    assert r.status_code == 200 and r.get_json()["format"] == "diwan-identity-export-v1"
    server = make_admin_client(tmp_path / "server", peer_host="127.0.0.1", peer_port=18891)
    assert_error(server.post("/identities/imports",
                             json={"export": r.get_json(), "password": "wrong password!"}), 403)
    assert not server.identities.is_own(fp)
    done = server.post("/identities/imports", json={"export": r.get_json(),
                                                    "password": PASSWORD})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["nodes"] == [AHMED_AT] and server.identities.is_own(fp)
    assert_error(server.post("/identities/imports", json={"export": {"format": "x"},
                                                          "password": PASSWORD}), 400)
