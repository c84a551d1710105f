"""Admin API /groups through the Flask test client; ``blocked`` is reserved."""

from __future__ import annotations

import os

import pytest

from tests.helpers.clients import AdminClient, assert_error
from tests.helpers.datadirs import OwnIdentity
from tests.helpers.strangers import new_stranger


def _import_foreign(admin: AdminClient) -> str:
    r = admin.post("/identities", json={"public_key": new_stranger().document.decode()})
    assert r.status_code == 201
    return str(r.json["fingerprint"])


def _groups(admin: AdminClient) -> dict[str, dict]:  # type: ignore[type-arg]
    r = admin.get("/groups")
    assert r.status_code == 200
    return {g["name"]: g for g in r.json["groups"]}


def test_blocked_group_exists_and_is_reserved(admin_client: AdminClient) -> None:
    groups = _groups(admin_client)
    assert groups["blocked"] == {"name": "blocked", "members": [], "reserved": True}
    body = assert_error(admin_client.delete("/groups/blocked"), 403, "name")
    assert "reserved" in body["message"]
    assert (admin_client.dd.identities / "blocked").is_dir()
    r = admin_client.put("/groups/blocked")
    assert r.status_code == 200 and r.json["changed"] is False


def test_group_life_cycle(admin_client: AdminClient) -> None:
    fp = _import_foreign(admin_client)
    r = admin_client.put("/groups/friends")
    assert r.status_code == 200 and r.json == {"ok": True, "changed": True}
    assert admin_client.put("/groups/friends").json["changed"] is False
    assert admin_client.get("/groups/friends").json == {"name": "friends", "members": [],
                                                        "reserved": False}
    r = admin_client.put(f"/groups/friends/{fp}")
    assert r.status_code == 200 and r.json["changed"] is True
    assert admin_client.put(f"/groups/friends/{fp}").json["changed"] is False
    copy = admin_client.dd.identities / "friends" / f"{fp}.pub"
    assert copy.read_bytes() == (admin_client.dd.identities / f"{fp}.pub").read_bytes()
    assert admin_client.get("/groups/friends").json["members"] == [fp]
    assert admin_client.get(f"/identities/{fp}").json["groups"] == ["friends"]
    assert _groups(admin_client)["friends"]["members"] == [fp]

    assert admin_client.delete(f"/groups/friends/{fp}").status_code == 204
    assert not copy.exists()
    assert_error(admin_client.delete(f"/groups/friends/{fp}"), 404, "fingerprint")

    admin_client.put(f"/groups/friends/{fp}")
    assert admin_client.delete("/groups/friends").status_code == 204
    assert_error(admin_client.get("/groups/friends"), 404, "name")
    assert_error(admin_client.delete("/groups/friends"), 404, "name")
    assert admin_client.get(f"/identities/{fp}").status_code == 200  # identity kept
    assert not [n for n in os.listdir(admin_client.dd.identities) if n.startswith(".")]


def test_member_must_be_known_and_group_must_exist(admin_client: AdminClient) -> None:
    fp = _import_foreign(admin_client)
    admin_client.put("/groups/work")
    assert_error(admin_client.put(f"/groups/work/{'0' * 64}"), 404, "fingerprint")
    assert_error(admin_client.put(f"/groups/nosuch/{fp}"), 404, "name")
    assert_error(admin_client.delete(f"/groups/nosuch/{fp}"), 404, "name")
    assert not (admin_client.dd.identities / "nosuch").exists()


def test_block_and_unblock(module_admin: AdminClient, own_identity: OwnIdentity) -> None:
    fp = _import_foreign(module_admin)
    r = module_admin.put(f"/groups/blocked/{fp}")
    assert r.status_code == 200 and r.json["changed"] is True
    shown = module_admin.get(f"/identities/{fp}").json
    assert shown["blocked"] is True and "blocked" in shown["groups"]
    assert _groups(module_admin)["blocked"]["members"] == [fp]
    assert module_admin.delete(f"/groups/blocked/{fp}").status_code == 204
    assert module_admin.get(f"/identities/{fp}").json["blocked"] is False
    body = assert_error(module_admin.put(f"/groups/blocked/{own_identity.fingerprint}"), 409,
                        "fingerprint")
    assert "own" in body["message"]


def test_deleted_identity_stays_blocked(module_admin: AdminClient) -> None:
    fp = _import_foreign(module_admin)
    module_admin.put(f"/groups/blocked/{fp}")
    assert module_admin.delete(f"/identities/{fp}").status_code == 204
    listed = {i["fingerprint"]: i for i in module_admin.get("/identities").json["identities"]}
    assert listed[fp]["blocked"] is True and listed[fp]["own"] is False


@pytest.mark.parametrize("name", ["A", "-x", "_x", "a" * 64, "a.b", "a%20b", "%2e%2e", ".x",
                                  "%C3%A9", "a%00", "a%5Cb"])
def test_bad_group_names_are_400_naming_the_field(module_admin: AdminClient, name: str) -> None:
    before = sorted(os.listdir(module_admin.dd.identities))
    for method in ("GET", "PUT", "DELETE"):
        assert_error(module_admin.open(method, f"/groups/{name}"), 400, "name")
    assert_error(module_admin.put(f"/groups/{name}/{'0' * 64}"), 400, "name")
    assert sorted(os.listdir(module_admin.dd.identities)) == before


@pytest.mark.parametrize("path", ["/groups/a%2Fb", "/groups/..", "/groups/../identities",
                                  "/groups/a/b/c", "/groups/%2e%2e%2f%2e%2e",
                                  "/groups/friends/%2e%2e", "/groups/friends/..%2F..",
                                  "/groups/x/" + "0" * 63, "/groups/x/" + "0" * 65])
def test_separators_and_dots_never_reach_the_disk(module_admin: AdminClient, path: str) -> None:
    before = sorted(os.listdir(module_admin.dd.identities))
    parent_before = sorted(os.listdir(module_admin.dd.root))
    for method in ("GET", "PUT", "DELETE"):
        r = module_admin.open(method, path)
        assert 400 <= r.status_code < 500, (method, path, r.status_code)
        assert r.mimetype == "application/json"
    assert sorted(os.listdir(module_admin.dd.identities)) == before
    assert sorted(os.listdir(module_admin.dd.root)) == parent_before
