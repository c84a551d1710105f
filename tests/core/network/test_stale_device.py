"""A node of a multi-device identity whose ``.pub`` is stale about another device's
rotation (docs/protocol.md, "Rotation: merging certificates", "Several nodes of one
identity"): its own certificate is current, so it is neither refused as an asker nor
is its answer refused as an owner; the newer certificate held is kept either way.

Found by the tester of issues 8 and 14: the laptop L of an identity rotates its
transport key and talks to a contact C first; the always-on server S of the same
identity has not heard of it yet and still sends ``L serial 1`` in its document. The
serial rule refused the whole document, so C refused S's requests
(``not_authenticated``) and S's answers (``BadResponse``) until S met L again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.base import crypto, noise
from app.core.base.errors import NotAuthenticated
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network import exchange
from app.core.network.feeds import serve_feed
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import PASSWORD, make_datadir

LAPTOP, SERVER = "1111111111111111", "2222222222222222"


@pytest.fixture(autouse=True, scope="module")
def _cheap_kdf() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIWAN_INSECURE_KDF", "1")
        yield


def _identity() -> tuple[bytes, bytes, bytes, bytes]:
    """(seed, the laptop's transport secrets at serial 1 and 2, the server's secret)."""
    return (crypto.new_signing_seed(), crypto.new_transport_secret(),
            crypto.new_transport_secret(), crypto.new_transport_secret())


def _docs(seed: bytes, l1: bytes, l2: bytes, s1: bytes) -> tuple[keys.PublicKey, keys.PublicKey]:
    """(the stale document: L at serial 1, the current one: L at serial 2), S at 1 in both."""
    def cert(device: str, serial: int, secret: bytes) -> keys.DeviceCert:
        return keys.DeviceCert(device, serial, noise.keypair_from_secret(secret).public)
    stale = keys.certify(seed, [cert(LAPTOP, 1, l1), cert(SERVER, 1, s1)])
    current = keys.certify(seed, [cert(LAPTOP, 2, l2), cert(SERVER, 1, s1)])
    return stale, current


def test_an_asker_whose_document_is_stale_about_another_device_is_served(
        tmp_path: Path) -> None:
    dd = make_datadir(tmp_path / "contact")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed_c = ids.open_seed(own, PASSWORD)
    public = build_post(seed_c, {"CREATED_TIME": int(time.time()) - 10, "TEXT": "hello"})
    Ingestor(dd).ingest_many([public], author=own)
    seed, l1, l2, s1 = _identity()
    stale, current = _docs(seed, l1, l2, s1)
    ids.import_pub(current.to_bytes())                  # C learnt L's rotation from L
    server = exchange.OwnKeys(stale.fingerprint, stale.to_bytes(), s1)
    now = int(time.time())
    body, pending = exchange.build_request(
        asker=server, owner_fp=own, owner_transport=ids.public_key(own).transport_public,
        limit=10, now=now)
    got = exchange.open_response(serve_feed(dd, own, body, now=now, remote="192.0.2.7").read(),
                                 pending, max_bytes=10**7)
    assert got.posts == [public]
    assert ids.pub_document(stale.fingerprint) == current.to_bytes()  # the newer kept


def test_a_leaked_old_key_of_the_rotated_device_stays_refused(tmp_path: Path) -> None:
    """The tolerance above never lets a superseded key in: L's serial-1 key is refused."""
    dd = make_datadir(tmp_path / "contact")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed, l1, l2, s1 = _identity()
    stale, current = _docs(seed, l1, l2, s1)
    ids.import_pub(current.to_bytes())
    old_laptop = exchange.OwnKeys(stale.fingerprint, stale.to_bytes(), l1)
    now = int(time.time())
    body, _ = exchange.build_request(
        asker=old_laptop, owner_fp=own, owner_transport=ids.public_key(own).transport_public,
        limit=10, now=now)
    with pytest.raises(NotAuthenticated):
        serve_feed(dd, own, body, now=now, remote="192.0.2.7")
    assert ids.pub_document(stale.fingerprint) == current.to_bytes()


def test_another_node_of_the_identity_is_served_after_this_node_rotated(
        tmp_path: Path) -> None:
    """The owner's own laptop rotated; its server, still holding the laptop's serial 1,
    asks as the identity: it is served the whole feed (before, both nodes refused each
    other until the server fetched the laptop's key by plain GET, which a setting may
    turn off)."""
    dd = make_datadir(tmp_path / "laptop")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    private = build_post(seed, {"CREATED_TIME": int(time.time()) - 10, "TEXT": "to x",
                                "TO_FINGERPRINT": "ab" * 32})
    Ingestor(dd).ingest_many([private], author=own)
    s1 = crypto.new_transport_secret()
    server_doc = keys.certify(seed, [*ids.public_key(own).devices, keys.DeviceCert(
        SERVER, 1, noise.keypair_from_secret(s1).public)]).to_bytes()
    server = exchange.OwnKeys(own, server_doc, s1)

    def ask() -> exchange.FeedResponse:
        now = int(time.time())
        body, pending = exchange.build_request(
            asker=server, owner_fp=own, limit=10, now=now,
            owner_transport=ids.public_key(own).transport_public)
        return exchange.open_response(
            serve_feed(dd, own, body, now=now, remote="192.0.2.8").read(), pending,
            max_bytes=10**7)

    assert ask().posts == [private]                     # the laptop learns the server
    ids.rotate_transport(own, PASSWORD)
    assert ask().posts == [private]                     # and still serves it after rotating
