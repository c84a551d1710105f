"""Admin API /identities through the Flask test client (real files in a tmp data directory)."""

from __future__ import annotations

import json
import os
import stat
from typing import Any

import pytest

from app.core.base import crypto
from app.core.base.encoding import b64d, b64e
from app.core.identity import keys, transport
from app.core.identity.identities import Identities
from tests.helpers.clients import AdminClient, assert_error
from tests.helpers.datadirs import PASSWORD, OwnIdentity, snapshot
from tests.helpers.strangers import new_stranger

MiB = 1024 * 1024
BAD_FPS = ["abc", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "0" * 60 + ".pub",
           "%2e%2e", "..", "0" * 32 + "%2F" + "0" * 31]


# --- create / import ---------------------------------------------------------------

def test_create_own_identity(admin_client: AdminClient) -> None:
    r = admin_client.post("/identities", json={"password": "s3cret-twelve"})
    assert r.status_code == 201
    fp = r.json["fingerprint"]
    assert r.json["own"] is True and len(fp) == 64
    private = admin_client.dd.identities / fp
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(admin_client.dd.identities.stat().st_mode) & 0o077 == 0
    assert keys.parse_pub((admin_client.dd.identities / f"{fp}.pub").read_bytes(),
                          expected_fp=fp)
    doc = json.loads(private.read_bytes())
    assert (doc["kdf"]["opslimit"], doc["kdf"]["memlimit"]) == keys.kdf_cost(
        admin_client.dd.settings)
    assert b"s3cret" not in private.read_bytes()
    assert not [n for n in os.listdir(admin_client.dd.identities) if n.startswith(".")]


def test_import_foreign_key(module_admin: AdminClient) -> None:
    doc = new_stranger().document
    r = module_admin.post("/identities", json={"public_key": doc.decode()})
    assert r.status_code == 201 and r.json["own"] is False
    fp = r.json["fingerprint"]
    assert fp == keys.parse_pub(doc).fingerprint
    assert (module_admin.dd.identities / f"{fp}.pub").read_bytes() == doc
    again = module_admin.post("/identities", json={"public_key": doc.decode()})
    assert again.status_code == 201 and again.json["fingerprint"] == fp


def test_import_own_pub_reports_own(module_admin: AdminClient, own_identity: OwnIdentity) -> None:
    r = module_admin.post("/identities", json={"public_key": own_identity.pub_path.read_text()})
    assert r.status_code == 201 and r.json == {"fingerprint": own_identity.fingerprint,
                                               "own": True}


@pytest.mark.parametrize("mutate", [
    lambda d: d[:-10] + ("B" if d[-10] == "A" else "A") + d[-9:],   # certificate
    lambda d: d.replace("sign ", "sign  "),
    lambda d: d.replace("\n", "\r\n"),
    lambda d: d[:-1],
    lambda d: "",
    lambda d: "diwan-public-key-v1\n",
    lambda d: d.replace("diwan-public-key-v2", "<script>"),
])
def test_import_refuses_documents_that_do_not_verify(module_admin: AdminClient, mutate) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(module_admin.dd.root, "identities")
    doc = new_stranger().document.decode()
    r = module_admin.post("/identities", json={"public_key": mutate(doc)})
    assert_error(r, 400, "public_key")
    assert snapshot(module_admin.dd.root, "identities") == before


@pytest.mark.parametrize(("body", "field"), [
    ({}, "_schema"),
    ({"password": "x" * 12, "public_key": "y"}, "_schema"),
    ({"password": "x" * 11}, "password"),
    ({"password": ""}, "password"),
    ({"password": "x" * 1025}, "password"),
    ({"password": 5}, "password"),
    ({"password": None}, "password"),
    ({"password": ["x"]}, "password"),
    ({"password": "\ud800"}, "password"),
    ({"public_key": "x" * 2049}, "public_key"),
    ({"public_key": "\udfff"}, "public_key"),
    ({"password": "x", "admin": True}, "admin"),
    ({"public_key": "x", "fingerprint": "0" * 64}, "fingerprint"),
])
def test_create_bad_bodies(module_admin: AdminClient, body: dict, field: str) -> None:  # type: ignore[type-arg]
    before = snapshot(module_admin.dd.root, "identities")
    r = module_admin.post("/identities", data=json.dumps(body), content_type="application/json")
    assert_error(r, 400, field)
    assert snapshot(module_admin.dd.root, "identities") == before


# --- list / show -------------------------------------------------------------------

def test_list_and_show(module_admin: AdminClient, own_identity: OwnIdentity) -> None:
    r = module_admin.get("/identities")
    assert r.status_code == 200
    listed = {i["fingerprint"]: i for i in r.json["identities"]}
    me = listed[own_identity.fingerprint]
    assert me["own"] is True and me["blocked"] is False and me["groups"] == []
    assert me["last_used"] == own_identity.pub_path.stat().st_mtime
    r = module_admin.get(f"/identities/{own_identity.fingerprint}")
    assert r.status_code == 200
    assert r.json["public_key"] == own_identity.pub_path.read_text()
    assert r.json["fingerprint"] == own_identity.fingerprint and r.json["own"] is True
    assert "password" not in r.get_data(as_text=True)
    assert "sealed_seed" not in r.get_data(as_text=True)


@pytest.mark.parametrize("fp", BAD_FPS)
@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("GET", "", None), ("DELETE", "", None),
    ("POST", "/sign", {"password": "x", "content": "y"}),
    ("POST", "/password", {"old_password": "x", "new_password": "y" * 12}),
    ("POST", "/transport", {"password": "x"}),
    ("POST", "/devices/0123456789abcdef/retire", {"password": "x"}),
])
def test_malformed_fingerprints_are_400(module_admin: AdminClient, fp: str, method: str,
                                        suffix: str, body: dict | None) -> None:  # type: ignore[type-arg]
    r = module_admin.open(method, f"/identities/{fp}{suffix}", json=body)
    assert 400 <= r.status_code < 500
    assert r.mimetype == "application/json"
    if r.status_code == 400 and "/" not in fp.replace("%2F", "/"):
        assert_error(r, 400, "fp")


@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("GET", "", None), ("DELETE", "", None),
    ("POST", "/sign", {"password": "x", "content": "y"}),
    ("POST", "/password", {"old_password": "x", "new_password": "y" * 12}),
    ("POST", "/transport", {"password": "x"}),
    ("POST", "/devices/0123456789abcdef/retire", {"password": "x"}),
])
def test_unknown_identity_is_404(module_admin: AdminClient, method: str, suffix: str,
                                 body: dict | None) -> None:  # type: ignore[type-arg]
    r = module_admin.open(method, f"/identities/{'0' * 64}{suffix}", json=body)
    assert_error(r, 404, "fingerprint")


# --- sign ----------------------------------------------------------------------------

def test_sign_verifies_with_pub_alone_and_touches_it(module_admin: AdminClient,
                                                     own_identity: OwnIdentity) -> None:
    os.utime(own_identity.pub_path, (1_000_000, 1_000_000))
    r = module_admin.post(f"/identities/{own_identity.fingerprint}/sign",
                          json={"password": PASSWORD, "content": "héllo"})
    assert r.status_code == 200
    signature = b64d(r.json["signature"], length=64)
    assert r.json["signature_hex"] == signature.hex()
    key = keys.parse_pub(own_identity.pub_path.read_bytes(), expected_fp=own_identity.fingerprint)
    assert crypto.verify(key.sign, crypto.CTX_USER_SIGNATURE, "héllo".encode(), signature)
    assert r.json["context"] == "diwan/v2/user-signature"
    assert bytes.fromhex(r.json["context_hex"]) == b"diwan/v2/user-signature\x00"
    assert not crypto.verify(key.sign, crypto.CTX_POST, "héllo".encode(), signature)
    assert own_identity.pub_path.stat().st_mtime > 1_000_000  # last_used advanced
    listed = {i["fingerprint"]: i for i in module_admin.get("/identities").json["identities"]}
    assert listed[own_identity.fingerprint]["last_used"] > 1_000_000


def test_sign_base64url_content(module_admin: AdminClient, own_identity: OwnIdentity) -> None:
    content = bytes(range(256))
    r = module_admin.post(f"/identities/{own_identity.fingerprint}/sign",
                          json={"password": PASSWORD, "content": b64e(content),
                                "encoding": "base64url"})
    assert r.status_code == 200
    key = keys.parse_pub(own_identity.pub_path.read_bytes())
    assert crypto.verify(key.sign, crypto.CTX_USER_SIGNATURE, content, b64d(r.json["signature"]))


@pytest.mark.parametrize(("body", "field"), [
    ({"password": PASSWORD}, "content"),
    ({"content": "x"}, "password"),
    ({"password": PASSWORD, "content": "!!", "encoding": "base64url"}, "content"),
    ({"password": PASSWORD, "content": "AB=", "encoding": "base64url"}, "content"),
    ({"password": PASSWORD, "content": "x", "encoding": "latin-1"}, "encoding"),
    ({"password": PASSWORD, "content": 5}, "content"),
    ({"password": PASSWORD, "content": "\ud800"}, "content"),
    ({"password": PASSWORD, "content": "x", "extra": 1}, "extra"),
])
def test_sign_bad_bodies(module_admin: AdminClient, own_identity: OwnIdentity, body: dict,  # type: ignore[type-arg]
                         field: str) -> None:
    r = module_admin.post(f"/identities/{own_identity.fingerprint}/sign",
                          data=json.dumps(body), content_type="application/json")
    assert_error(r, 400, field)


def test_sign_wrong_password_is_403_and_changes_nothing(module_admin: AdminClient,
                                                        own_identity: OwnIdentity) -> None:
    before = own_identity.private_path.read_bytes()
    r = module_admin.post(f"/identities/{own_identity.fingerprint}/sign",
                          json={"password": "wrong", "content": "x"})
    body = assert_error(r, 403)
    assert body["status"] == "wrong_password"
    assert own_identity.private_path.read_bytes() == before


def test_sign_with_foreign_identity_is_403(module_admin: AdminClient) -> None:
    fp = module_admin.post("/identities", json={"public_key": new_stranger().document.decode()}
                           ).json["fingerprint"]
    r = module_admin.post(f"/identities/{fp}/sign", json={"password": "x", "content": "y"})
    assert_error(r, 403, "fingerprint")


# --- change password -----------------------------------------------------------------

def test_change_password(admin_client: AdminClient) -> None:
    old, new = "old password!", "new password!"
    fp = admin_client.post("/identities", json={"password": old}).json["fingerprint"]
    private = admin_client.dd.identities / fp
    pub_before = keys.parse_pub((admin_client.dd.identities / f"{fp}.pub").read_bytes())

    before = private.read_bytes()
    r = admin_client.post(f"/identities/{fp}/password",
                          json={"old_password": "wrong", "new_password": new})
    assert_error(r, 403)
    r = admin_client.post(f"/identities/{fp}/password",
                          json={"old_password": old, "new_password": "short"})
    assert_error(r, 400, "new_password")
    assert private.read_bytes() == before

    r = admin_client.post(f"/identities/{fp}/password",
                          json={"old_password": old, "new_password": new})
    assert r.status_code == 200 and r.json["ok"] is True
    assert private.read_bytes() != before
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    pub_after = keys.parse_pub((admin_client.dd.identities / f"{fp}.pub").read_bytes())
    assert pub_after.sign == pub_before.sign          # same identity, rotated transport key
    assert pub_after.devices[0].serial == pub_before.devices[0].serial + 1
    assert admin_client.get(f"/identities/{fp}").json["fingerprint"] == fp
    r = admin_client.post(f"/identities/{fp}/sign", json={"password": old, "content": "x"})
    assert_error(r, 403)
    r = admin_client.post(f"/identities/{fp}/sign", json={"password": new, "content": "x"})
    assert r.status_code == 200


def test_rotate_transport(admin_client: AdminClient) -> None:
    password = "rotate me please"
    fp = admin_client.post("/identities", json={"password": password}).json["fingerprint"]
    pub_path = admin_client.dd.identities / f"{fp}.pub"
    before = pub_path.read_bytes()
    assert_error(admin_client.post(f"/identities/{fp}/transport", json={"password": "nope"}),
                 403)
    assert_error(admin_client.post(f"/identities/{fp}/transport", json={}), 400, "password")
    assert_error(admin_client.post(f"/identities/{fp}/transport", auth=False,
                                   json={"password": password}), 401)
    assert pub_path.read_bytes() == before
    r = admin_client.post(f"/identities/{fp}/transport", json={"password": password})
    assert r.status_code == 200, r.json
    assert r.json["serial"] == 2 and r.json["public_key"] == pub_path.read_text()
    key = keys.parse_pub(pub_path.read_bytes(), expected_fp=fp)
    assert key.devices[0].device_id == r.json["device"]
    ids = admin_client.identities
    assert [k.serial for k in ids.transport_keys(fp)] == [2, 1]
    assert_error(admin_client.post(f"/identities/{'0' * 64}/transport",
                                   json={"password": password}), 404)


@pytest.mark.parametrize(("body", "field"), [
    ({"old_password": "x"}, "new_password"),
    ({"new_password": "x"}, "old_password"),
    ({"old_password": "x", "new_password": ""}, "new_password"),
    ({"old_password": "x", "new_password": "y" * 11}, "new_password"),
    ({"old_password": "x", "new_password": "y", "password": "z"}, "password"),
])
def test_change_password_bad_bodies(module_admin: AdminClient, own_identity: OwnIdentity,
                                    body: dict, field: str) -> None:  # type: ignore[type-arg]
    r = module_admin.post(f"/identities/{own_identity.fingerprint}/password", json=body)
    assert_error(r, 400, field)


# --- delete --------------------------------------------------------------------------

def test_delete_foreign_identity(module_admin: AdminClient) -> None:
    fp = module_admin.post("/identities", json={"public_key": new_stranger().document.decode()}
                           ).json["fingerprint"]
    r = module_admin.delete(f"/identities/{fp}")
    assert r.status_code == 204
    assert not (module_admin.dd.identities / f"{fp}.pub").exists()
    assert_error(module_admin.get(f"/identities/{fp}"), 404)
    assert_error(module_admin.delete(f"/identities/{fp}"), 404)


def test_delete_own_identity_needs_its_password(admin_client: AdminClient) -> None:
    fp = admin_client.post("/identities", json={"password": PASSWORD}).json["fingerprint"]
    private = admin_client.dd.identities / fp
    before = private.read_bytes()
    assert_error(admin_client.delete(f"/identities/{fp}"), 403)
    assert_error(admin_client.delete(f"/identities/{fp}", json={"password": "nope"}), 403)
    assert_error(admin_client.delete(f"/identities/{fp}", json={"password": ""}), 400, "password")
    assert_error(admin_client.delete(f"/identities/{fp}", json={"pw": "pw"}), 400, "pw")
    assert private.read_bytes() == before
    r = admin_client.delete(f"/identities/{fp}", json={"password": PASSWORD})
    assert r.status_code == 204
    assert not private.exists() and not (admin_client.dd.identities / f"{fp}.pub").exists()


def _with_other_device(dd: Any, fp: str, password: str, device: str) -> None:
    """Certify ``device`` as another node of ``fp`` (as an identity import would)."""
    ids = Identities(dd)
    seed = ids.open_seed(fp, password)
    other = keys.DeviceCert(device, 1, crypto.x25519_public(crypto.new_transport_secret()))
    transport.write_pub(ids, fp, keys.with_device(seed, ids.public_key(fp), other))


def test_retire_another_device(admin_client: AdminClient) -> None:
    password = "retire me please"
    fp = admin_client.post("/identities", json={"password": password}).json["fingerprint"]
    other = "0123456789abcdef"
    _with_other_device(admin_client.dd, fp, password, other)
    pub_path = admin_client.dd.identities / f"{fp}.pub"
    before = pub_path.read_bytes()
    url = f"/identities/{fp}/devices/{other}/retire"
    assert_error(admin_client.post(url, json={"password": "nope"}), 403)
    assert_error(admin_client.post(url, json={}), 400, "password")
    assert_error(admin_client.post(url, auth=False, json={"password": password}), 401)
    assert_error(admin_client.post(f"/identities/{fp}/devices/0123456789ABCDEF/retire",
                                   json={"password": password}), 400, "device")
    assert_error(admin_client.post(f"/identities/{fp}/devices/fedcba9876543210/retire",
                                   json={"password": password}), 404, "device")
    own = admin_client.identities.device_id(fp)
    assert_error(admin_client.post(f"/identities/{fp}/devices/{own}/retire",
                                   json={"password": password}), 400, "device")
    assert pub_path.read_bytes() == before
    r = admin_client.post(url, json={"password": password})
    assert r.status_code == 200, r.json
    assert r.json["device"] == other and r.json["serial"] == 2**53 - 1
    assert r.json["public_key"] == pub_path.read_text()
    retired = keys.parse_pub(pub_path.read_bytes(), expected_fp=fp).device(other)
    assert retired is not None and retired.serial == 2**53 - 1
    assert [k.serial for k in admin_client.identities.transport_keys(fp)] == [1]  # own: as was
