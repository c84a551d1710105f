"""Admin API for contacts and lying peers, with keys fetched over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from live_nodes import closed_port_address, serving

from app import create_peer_app
from app.core.network.keylookup import LyingPeers
from tests.helpers.clients import AdminClient, assert_error, make_admin_client
from tests.helpers.datadirs import PASSWORD, OwnIdentity
from tests.helpers.strangers import new_stranger


@dataclass(frozen=True)
class Basant:
    fp: str
    address: str


@pytest.fixture(scope="module")
def basant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Basant]:
    """Another node with one identity, its real peer app served on a loopback port."""
    root = tmp_path_factory.mktemp("basant")
    fp = make_admin_client(root).identities.create(PASSWORD)
    with serving(create_peer_app({"data_dir": str(root)})) as address:
        yield Basant(fp, address)


def liar_app(document: bytes) -> Any:
    """A node answering every key lookup with ``document``; counts what it is asked."""
    asked: list[str] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        asked.append(environ["PATH_INFO"])
        start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(document)))])
        return [document]

    app.asked = asked  # type: ignore[attr-defined]
    return app


def put(admin: AdminClient, fp: str, **body: Any) -> Any:
    return admin.put(f"/contacts/{fp}", json=body)


def test_add_show_list_remove(module_admin: AdminClient, own_identity: OwnIdentity,
                              basant: Basant) -> None:
    me = own_identity.fingerprint
    r = put(module_admin, basant.fp, address=basant.address + "/", identity=me)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["created"] is True and body["key_fetched"] is True
    assert body["address"] == basant.address and body["identity"] == me
    assert body["sync"]["state"] == "never"
    assert module_admin.identities.exists(basant.fp)  # fetched by fingerprint over HTTP
    r = put(module_admin, basant.fp, address=basant.address, identity=me)
    assert r.status_code == 200
    assert (r.get_json()["created"], r.get_json()["key_fetched"]) == (False, False)
    assert r.get_json()["replaced"] is None
    typo = put(module_admin, basant.fp, address="http://127.0.0.1:1", identity=me)
    assert_error(typo, 409, "address")  # a mistyped address never replaces a working one
    assert module_admin.get(f"/contacts/{basant.fp}").get_json()["address"] == basant.address
    moved = put(module_admin, basant.fp, address="http://127.0.0.1:1", identity=me,
                replace=True).get_json()
    assert moved["replaced"] == basant.address and moved["address"] == "http://127.0.0.1:1"
    back = put(module_admin, basant.fp, address=basant.address, identity=me, replace=True)
    assert back.get_json()["replaced"] == "http://127.0.0.1:1"
    listed = module_admin.get("/contacts").get_json()["contacts"]
    assert [c["fingerprint"] for c in listed] == [basant.fp]
    assert module_admin.get(f"/contacts/{basant.fp}").get_json()["addresses"] == [
        basant.address]
    assert module_admin.delete(f"/contacts/{basant.fp}").status_code == 204
    assert_error(module_admin.get(f"/contacts/{basant.fp}"), 404, "fingerprint")
    assert_error(module_admin.delete(f"/contacts/{basant.fp}"), 404, "fingerprint")
    assert module_admin.get("/contacts").get_json() == {"contacts": []}
    assert module_admin.identities.exists(basant.fp)  # the key stays


@pytest.mark.parametrize("body, field", [
    ({}, "address"),
    ({"address": "http://127.0.0.1:1"}, "identity"),
    ({"address": "ftp://127.0.0.1:1", "identity": "0" * 64}, "address"),
    ({"address": "http://u:p@127.0.0.1:1", "identity": "0" * 64}, "address"),
    ({"address": "http://127.0.0.1:1/x", "identity": "0" * 64}, "address"),
    ({"address": "http://127.0.0.1:1", "identity": "me"}, "identity"),
    ({"address": 5, "identity": "0" * 64}, "address"),
    ({"address": "http://127.0.0.1:1", "identity": "0" * 64, "extra": 1}, "extra"),
])
def test_invalid_bodies_name_the_field(module_admin: AdminClient, body: dict[str, Any],
                                       field: str) -> None:
    assert_error(put(module_admin, "a" * 64, **body), 400, field)


def test_the_following_identity_must_be_own(module_admin: AdminClient,
                                            own_identity: OwnIdentity) -> None:
    stranger, contact = new_stranger(), new_stranger().fp
    assert_error(put(module_admin, contact, address="http://127.0.0.1:1", identity=stranger.fp),
                 404, "identity")
    module_admin.identities.import_pub(stranger.document)
    assert_error(put(module_admin, contact, address="http://127.0.0.1:1", identity=stranger.fp),
                 400, "identity")
    me = own_identity.fingerprint
    assert_error(put(module_admin, me, address="http://127.0.0.1:1", identity=me), 409,
                 "fingerprint")
    assert_error(put(module_admin, "nope", address="http://127.0.0.1:1", identity=me), 400, "fp")


def test_a_wrong_key_by_plain_get_is_a_502_retried_and_never_a_ban(
        module_admin: AdminClient, own_identity: OwnIdentity) -> None:
    """Attack 6: an unauthenticated (forgeable) wrong key answer is not recorded as a lie."""
    contact, wrong_key = new_stranger().fp, new_stranger()
    wrong = wrong_key.fp
    liar = liar_app(wrong_key.document)
    with serving(liar) as address:
        for _ in range(2):
            body = assert_error(put(module_admin, contact, address=address,
                                    identity=own_identity.fingerprint), 502, "address")
            assert body["status"] == "peer_error" and wrong in body["message"]
    assert liar.asked == [f"/identities/{contact}"] * 2  # asked again: no ban
    assert not module_admin.identities.exists(contact)
    assert not module_admin.identities.exists(wrong)
    assert module_admin.get(f"/contacts/{contact}").status_code == 404
    assert [p for p in module_admin.get("/peers/lying").get_json()["lying_peers"]
            if p["address"] == address] == []


def test_forgiving_a_lying_peer(module_admin: AdminClient, own_identity: OwnIdentity) -> None:
    address = "http://127.0.0.1:9"
    LyingPeers(module_admin.dd).record(address, new_stranger().fp, "served a wrong key in an "
                                       "authenticated exchange")
    [entry] = [p for p in module_admin.get("/peers/lying").get_json()["lying_peers"]
               if p["address"] == address]
    assert "authenticated exchange" in entry["why"] and entry["when"] > 0
    r = module_admin.delete("/peers/lying", query_string={"address": address})
    assert r.status_code == 204
    assert_error(module_admin.delete("/peers/lying", query_string={"address": address}),
                 404, "address")
    assert_error(module_admin.delete("/peers/lying", query_string={"address": "ftp://x"}),
                 400, "address")
    assert_error(module_admin.delete("/peers/lying"), 400, "address")


def test_an_unreachable_node_is_a_502_and_nothing_is_stored(
        module_admin: AdminClient, own_identity: OwnIdentity) -> None:
    contact = new_stranger().fp
    body = assert_error(put(module_admin, contact, address=closed_port_address(),
                            identity=own_identity.fingerprint), 502, "address")
    assert body["status"] == "peer_error"
    assert module_admin.get(f"/contacts/{contact}").status_code == 404


@pytest.mark.parametrize("method, path", [("GET", "/contacts"), ("PUT", "/contacts/" + "a" * 64),
                                          ("GET", "/peers/lying"), ("GET", "/sync"),
                                          ("POST", "/sync")])
def test_the_token_is_required(module_admin: AdminClient, method: str, path: str) -> None:
    assert_error(module_admin.open(method, path, auth=False), 401)


def test_the_openapi_document_describes_the_routes(module_admin: AdminClient) -> None:
    paths = module_admin.get("/openapi.json").get_json()["paths"]
    assert {"/contacts", "/contacts/{fp}", "/sync", "/peers/lying"} <= set(paths)
