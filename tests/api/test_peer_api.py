"""The peer API through the Flask test client: POST /feeds/<fp>, GET/POST /identities.

Hostile bodies (malformed, truncated, oversize, random) get a 4xx JSON error
and change nothing under posts/ or identities/; the key server's bounds
(off by default, size, per-address rate on disk, key cap, no replacement).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_peer_app
from app.core.base import crypto, noise
from app.core.base.datadir import DataDir
from app.core.base.errors import RateLimited
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network import exchange, keyserver
from app.core.network.exchange import OwnKeys
from app.core.network.nonces import NonceStore
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.helpers.clients import assert_error
from tests.helpers.datadirs import PASSWORD, make_datadir, snapshot
from tests.helpers.strangers import new_stranger

OCTETS = "application/octet-stream"


def party() -> tuple[OwnKeys, keys.PublicKey, bytes]:
    """A new stranger's exchange keys, public key and seed."""
    stranger = new_stranger()
    return stranger.own, stranger.key, stranger.seed


ASKER, ASKER_KEY, _ = party()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIWAN_INSECURE_KDF", "1")
        root = tmp_path_factory.mktemp("peer") / "node"
        dd = make_datadir(root)
        ids = Identities(dd)
        own = ids.create(PASSWORD)
        seed = ids.open_seed(own, PASSWORD)
        raws = [build_post(seed, {"CREATED_TIME": int(time.time()) - 100 + i,
                                  "TEXT": f"post {i}"}) for i in range(3)]
        Ingestor(dd).ingest_many(raws, author=own)
        app = create_peer_app({"data_dir": str(root), "budget_prefix_requests": 10**6,
                               "budget_asker_requests": 10**6})
        yield {"dd": app.config["DIWAN"], "own": own, "key": ids.public_key(own),
               "raws": raws, "client": app.test_client()}


def build(node: dict[str, Any], **kw: Any) -> tuple[bytes, exchange.PendingRequest]:
    args: dict[str, Any] = {"after": 0, "limit": 10,
                            "now": int(time.time())}
    args.update(kw)
    return exchange.build_request(asker=ASKER, owner_fp=node["own"],
                                  owner_transport=node["key"].transport_public, **args)


def post_feed(client: FlaskClient, fp: str, body: bytes, addr: str = "192.0.2.1") -> Any:
    return client.post(f"/feeds/{fp}", data=body, content_type=OCTETS,
                       environ_base={"REMOTE_ADDR": addr})


# --- POST /feeds/<fp> ---------------------------------------------------------------------

def test_a_valid_request_gets_the_feed(node: dict[str, Any]) -> None:
    body, pending = build(node)
    r = post_feed(node["client"], node["own"], body)
    assert r.status_code == 200 and r.mimetype == OCTETS
    assert r.headers["Cache-Control"] == "no-store"
    assert int(r.headers["Content-Length"]) == len(r.data) == 1024
    got = exchange.open_response(r.data, pending, max_bytes=10**6)
    assert (got.posts, got.more, got.owner_pub) == (node["raws"], False, node["key"].to_bytes())


def test_a_replayed_request_is_a_409(node: dict[str, Any]) -> None:
    body, _ = build(node)
    assert post_feed(node["client"], node["own"], body).status_code == 200
    assert_error(post_feed(node["client"], node["own"], body), 409, "nonce")


def test_a_stale_request_is_a_409(node: dict[str, Any]) -> None:
    body, _ = build(node, now=int(time.time()) - node["dd"].settings["request_window"] - 5)
    assert_error(post_feed(node["client"], node["own"], body), 409, "time")


def _v1_request(node: dict[str, Any]) -> bytes:
    """A version-1 request as the old code made it: SealedBox(owner, 0x01 || E || ...)."""
    eph = crypto.new_transport_secret()
    frame = (b"\x01" + noise.keypair_from_secret(eph).public + len(ASKER.pub_document)
             .to_bytes(2, "big") + ASKER.pub_document + (100).to_bytes(2, "big") + bytes(100))
    return crypto.seal(node["key"].transport_public, frame)


def test_attack4_post_feeds_gives_one_answer_whatever_the_fingerprint(
        node: dict[str, Any]) -> None:
    """Hosted, known (not hosted), blocked, unknown: byte-identical answers to every
    request that does not authenticate, a version-1 request included."""
    ids = Identities(node["dd"])
    known, _, _ = party()
    blocked, _, _ = party()
    ids.import_pub(known.pub_document)
    ids.import_pub(blocked.pub_document)
    ids.block(blocked.fp)
    valid_elsewhere = exchange.build_request(
        asker=ASKER, owner_fp=known.fp, owner_transport=node["key"].transport_public,
        after=0, limit=1, now=int(time.time()))[0]
    bodies = [b"", b"x", os.urandom(exchange.REQUEST_BYTES), _v1_request(node), valid_elsewhere]
    answers = set()
    for fp in (node["own"], known.fp, blocked.fp, party()[0].fp):
        for body in bodies:
            r = post_feed(node["client"], fp, body)
            answers.add((r.status_code, r.mimetype, r.data))
    assert len(answers) == 1, answers
    ((status, _, data),) = answers
    assert status == 400 and json.loads(data)["status"] == "not_authenticated"


@pytest.mark.parametrize("fp", ["x" * 64, "A" * 64, "0" * 63, "..%2F..%2Fetc"])
def test_a_bad_fingerprint_is_refused(node: dict[str, Any], fp: str) -> None:
    r = post_feed(node["client"], fp, b"x")
    assert r.status_code in (400, 404)
    assert_error(r, r.status_code)


def test_get_on_a_feed_is_405(node: dict[str, Any]) -> None:
    assert_error(node["client"].get(f"/feeds/{node['own']}"), 405)


def _hostile_bodies(node: dict[str, Any]) -> list[bytes]:
    body, _ = build(node)
    flipped = []
    for i in range(0, len(body), 37):
        b = bytearray(body)
        b[i] ^= 0xFF
        flipped.append(bytes(b))
    return ([b"", b"\x00", b"\x02", os.urandom(96), os.urandom(exchange.REQUEST_BYTES),
             _v1_request(node)]
            + [body[:n] for n in (1, 47, 97, 100, len(body) // 2, len(body) - 1)]
            + [body + b"\x00"] + flipped)


def test_hostile_bodies_get_4xx_json_and_change_nothing(node: dict[str, Any]) -> None:
    dd, client = node["dd"], node["client"]
    before, nonces = snapshot(dd.root, dd.posts.name, dd.identities.name), NonceStore(dd).count()
    for body in _hostile_bodies(node):
        r = post_feed(client, node["own"], body)
        assert r.status_code == 400, (r.status_code, body[:20])
        assert_error(r, 400)
    assert snapshot(dd.root, dd.posts.name, dd.identities.name) == before
    assert NonceStore(dd).count() == nonces


def test_oversize_bodies_are_413(node: dict[str, Any]) -> None:
    client, limit = node["client"], node["dd"].settings["peer_max_body"]
    assert_error(post_feed(client, node["own"], bytes(limit + 1)), 413)
    assert post_feed(client, node["own"], bytes(limit)).status_code == 400  # the one answer


def test_attack7_budget_past_its_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    client = create_peer_app({"data_dir": str(make_datadir(tmp_path / "n").root),
                              "budget_prefix_requests": 2}).test_client()
    for _ in range(2):
        assert post_feed(client, "ab" * 32, b"x", "203.0.113.5").status_code == 400
    r = post_feed(client, "ab" * 32, b"x", "203.0.113.99")
    assert_error(r, 429)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert post_feed(client, "ab" * 32, b"x", "203.0.114.5").status_code == 400


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=3000))
def test_random_bodies_are_4xx(node: dict[str, Any], body: bytes) -> None:
    r = post_feed(node["client"], node["own"], body)
    assert 400 <= r.status_code < 500
    assert r.mimetype == "application/json"


# --- GET /identities/<fp> and key-server mode -------------------------------------------------

def test_key_server_is_off_by_default(node: dict[str, Any]) -> None:
    fresh, _, _ = party()
    r = node["client"].post("/identities", data=fresh.pub_document, content_type="text/plain")
    assert_error(r, 404)
    assert not Identities(node["dd"]).exists(fresh.fp)


def test_get_key_serves_own_keys(node: dict[str, Any]) -> None:
    r = node["client"].get(f"/identities/{node['own']}")
    assert r.status_code == 200 and r.data == node["key"].to_bytes()


def key_server(root: Path, **settings: Any) -> FlaskClient:
    return create_peer_app({"data_dir": str(root), "key_server": True, **settings}).test_client()


def upload(client: FlaskClient, doc: bytes, addr: str = "192.0.2.1", *,
           as_json: bool = False) -> Any:
    env = {"REMOTE_ADDR": addr}
    if as_json:
        return client.post("/identities", json={"public_key": doc.decode()}, environ_base=env)
    return client.post("/identities", data=doc, content_type="text/plain", environ_base=env)


def test_upload_stores_a_verified_key_once(tmp_path: Path) -> None:
    client = key_server(tmp_path / "ks")
    dd: DataDir = client.application.config["DIWAN"]
    own, _, _ = party()
    r = upload(client, own.pub_document)
    assert r.status_code == 201 and r.get_json() == {"fingerprint": own.fp, "created": True}
    assert keyserver.uploaded_document(dd, own.fp) == own.pub_document
    assert not Identities(dd).exists(own.fp)  # the node's own key store is not touched
    r = upload(client, own.pub_document, as_json=True)
    assert r.status_code == 200 and r.get_json() == {"fingerprint": own.fp, "created": False}
    assert client.get(f"/identities/{own.fp}").data == own.pub_document
    other, _, _ = party()
    assert upload(client, other.pub_document, as_json=True).status_code == 201


def test_a_key_is_never_replaced(tmp_path: Path) -> None:
    client = key_server(tmp_path / "ks")
    dd: DataDir = client.application.config["DIWAN"]
    own, key, seed = party()
    assert upload(client, own.pub_document).status_code == 201
    # the same device and serial certifying another transport key: valid, but not the held one
    device = key.devices[0]
    rival = keys.certify(seed, crypto.transport_public(crypto.new_transport_secret()),
                         device_id=device.device_id, serial=device.serial)
    assert rival.fingerprint == own.fp
    assert_error(upload(client, rival.to_bytes()), 409, "public_key")
    assert keyserver.uploaded_document(dd, own.fp) == own.pub_document
    assert client.get(f"/identities/{own.fp}").data == own.pub_document
    # a higher serial for the device replaces it (a rotation); going back is refused
    newer = keys.certify(seed, crypto.transport_public(crypto.new_transport_secret()),
                         device_id=device.device_id, serial=device.serial + 1)
    r = upload(client, newer.to_bytes())
    assert r.status_code == 200 and r.get_json() == {"fingerprint": own.fp, "created": False}
    assert keyserver.uploaded_document(dd, own.fp) == newer.to_bytes()
    assert client.get(f"/identities/{own.fp}").data == newer.to_bytes()
    assert_error(upload(client, own.pub_document), 409, "public_key")


@pytest.mark.parametrize("doc", [
    b"", b"hello", b"diwan-public-key-v1\n", b"\xff\xfe" * 10,
])
def test_bad_documents_are_400_and_store_nothing(tmp_path: Path, doc: bytes) -> None:
    client = key_server(tmp_path / "ks")
    dd: DataDir = client.application.config["DIWAN"]
    before = snapshot(dd.root, dd.posts.name, dd.identities.name)
    assert_error(upload(client, doc), 400, "public_key")
    assert snapshot(dd.root, dd.posts.name, dd.identities.name) == before


def test_a_document_whose_certificate_fails_is_400(tmp_path: Path) -> None:
    client = key_server(tmp_path / "ks")
    _, key, _ = party()
    _, other, _ = party()
    device = keys.DeviceCert(key.devices[0].device_id, 1, other.transport_public)
    forged = keys.PublicKey(key.sign, (device,), key.certificates).to_bytes()
    assert_error(upload(client, forged), 400, "public_key")
    assert keyserver.stored_keys(client.application.config["DIWAN"]) == 0


@pytest.mark.parametrize("body", [b'{"public_key": 5}', b"[" * 4000, b'{"x": "y"}', b"nope"])
def test_bad_json_uploads_are_400(tmp_path: Path, body: bytes) -> None:
    client = key_server(tmp_path / "ks")
    r = client.post("/identities", data=body, content_type="application/json")
    assert_error(r, 400)


def test_upload_size_edge(tmp_path: Path) -> None:
    own, _, _ = party()
    size = len(own.pub_document)
    client = key_server(tmp_path / "ks", key_server_max_body=size)
    assert upload(client, own.pub_document).status_code == 201       # exactly the limit
    bigger = key_server(tmp_path / "ks2", key_server_max_body=size - 1)
    assert_error(upload(bigger, own.pub_document), 413, "public_key")
    assert keyserver.uploaded_document(bigger.application.config["DIWAN"], own.fp) is None


def test_rate_limit_per_address_holds_across_apps(tmp_path: Path) -> None:
    client = key_server(tmp_path / "ks", key_server_rate=3)
    for _ in range(2):
        assert upload(client, b"garbage").status_code == 400    # bad attempts count too
    assert upload(client, party()[0].pub_document).status_code == 201
    last = party()[0]
    assert_error(upload(client, last.pub_document), 429)
    assert not Identities(client.application.config["DIWAN"]).exists(last.fp)
    assert upload(client, last.pub_document, "192.0.2.2").status_code == 201
    again = key_server(tmp_path / "ks", key_server_rate=3)   # another worker, or a restart
    assert_error(upload(again, party()[0].pub_document), 429)


def test_ipv6_addresses_share_their_64(tmp_path: Path) -> None:
    client = key_server(tmp_path / "ks", key_server_rate=1)
    assert upload(client, party()[0].pub_document, "2001:db8:1:2::1").status_code == 201
    assert_error(upload(client, party()[0].pub_document, "2001:db8:1:2:ffff::9"), 429)
    assert upload(client, party()[0].pub_document, "2001:db8:1:3::1").status_code == 201


def test_rate_window_is_one_hour(tmp_path: Path) -> None:
    dd = make_datadir(tmp_path / "ks", key_server=True, key_server_rate=2)
    t = 1_700_000_000
    keyserver.count_attempt(dd, "198.51.100.7", now=t)
    keyserver.count_attempt(dd, "198.51.100.7", now=t + 10)
    with pytest.raises(RateLimited):
        keyserver.count_attempt(dd, "198.51.100.7", now=t + 3599)
    keyserver.count_attempt(dd, "198.51.100.7", now=t + 3600)    # the first one has aged out
    with pytest.raises(RateLimited):
        keyserver.count_attempt(dd, "198.51.100.7", now=t + 3601)


def test_rate_keys() -> None:
    assert keyserver.rate_key("192.0.2.1") == "192.0.2.1"
    assert keyserver.rate_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert keyserver.rate_key("2001:db8::1") == keyserver.rate_key("2001:db8::ffff:1")
    assert keyserver.rate_key("2001:db8::1") == "2001:db8::/64"
    assert keyserver.rate_key("fe80::1%eth0") == "fe80::/64"


def test_key_cap(tmp_path: Path) -> None:
    client = key_server(tmp_path / "ks", key_server_max_keys=2)
    dd: DataDir = client.application.config["DIWAN"]
    first, second, third = party()[0], party()[0], party()[0]
    assert upload(client, first.pub_document, "192.0.2.10").status_code == 201
    assert upload(client, second.pub_document, "198.51.100.11").status_code == 201
    assert_error(upload(client, third.pub_document, "203.0.113.12"), 507)
    assert keyserver.uploaded_document(dd, third.fp) is None
    assert upload(client, first.pub_document, "192.0.2.13").status_code == 200  # known: fine
    assert keyserver.stored_keys(dd) == 2


def test_an_upload_says_nothing_about_keys_the_node_holds(tmp_path: Path) -> None:
    """A blocked identity's and a contact's key upload like any unknown key (no oracle);
    the node's own key store (and its blocked list) is neither read nor changed."""
    client = key_server(tmp_path / "ks")
    dd: DataDir = client.application.config["DIWAN"]
    pest, contact, stranger = party()[0], party()[0], party()[0]
    ids = Identities(dd)
    ids.import_pub(pest.pub_document)
    ids.block(pest.fp)
    ids.delete(pest.fp)
    ids.import_pub(contact.pub_document)
    before = snapshot(dd.root, dd.identities.name)
    answers = [upload(client, x.pub_document, f"192.0.2.{20 + i}")
               for i, x in enumerate((pest, contact, stranger))]
    assert [(r.status_code, r.get_json()["created"]) for r in answers] == [(201, True)] * 3
    assert snapshot(dd.root, dd.identities.name) == before
    assert not ids.exists(pest.fp) and ids.is_blocked(pest.fp)


def test_openapi_documents_the_peer_routes(node: dict[str, Any]) -> None:
    spec = json.loads(node["client"].get("/openapi.json").data)
    assert "post" in spec["paths"]["/feeds/{fp}"]
    assert "post" in spec["paths"]["/identities"]
