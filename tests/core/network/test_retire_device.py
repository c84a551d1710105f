"""Retiring a lost or stolen node of an identity (docs/protocol.md, Rotation: retiring a
device; docs/threats.md, A12).

The laptop and the server are two nodes of identity X. The laptop is stolen with its
key file: its transport secret is unencrypted, so the thief can ask as X's laptop. The
owner retires the laptop's device on the server; the server then refuses the thief at
once, and a contact refuses it from its next exchange with the server on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app import create_peer_app
from app.core.base.datadir import DataDir
from app.core.base.errors import (
    BadInput,
    KeyConflict,
    NotAuthenticated,
    NotFound,
    WrongPassword,
)
from app.core.identity.identities import Identities
from app.core.network import exchange
from app.core.network.contacts import Contacts
from app.core.network.exchangetypes import FeedResponse
from app.core.network.feeds import serve_feed
from app.core.network.identityexport import export_identity, import_identity
from app.core.network.sync import sync_contact
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import flask_handler, routes, session_with

RETIRED_SERIAL = 2**53 - 1  # docs/protocol.md, Retiring another node of the identity


def _ask(dd: DataDir, owner: str, asker: exchange.OwnKeys) -> FeedResponse:
    """``asker``'s feed request to ``owner`` on ``dd``, opened (raises as serve_feed)."""
    now = int(time.time())
    ids = Identities(dd)
    transport = ids.public_key(owner).device(ids.device_id(owner))
    assert transport is not None
    body, pending = exchange.build_request(asker=asker, owner_fp=owner,
                                           owner_transport=transport.transport_public,
                                           limit=10, now=now)
    answer = serve_feed(dd, owner, body, now=now, remote="192.0.2.66").read()
    return exchange.open_response(answer, pending, max_bytes=10**7)


@pytest.fixture
def nodes(tmp_path: Path) -> tuple[DataDir, DataDir, str, exchange.OwnKeys]:
    """(laptop, server, X, the thief: the laptop's stolen transport key as X)."""
    laptop, server = make_datadir(tmp_path / "laptop"), make_datadir(tmp_path / "server")
    x = Identities(laptop).create(PASSWORD)
    import_identity(server, export_identity(laptop, x), PASSWORD)
    ids = Identities(laptop)
    thief = exchange.OwnKeys(x, ids.pub_document(x), ids.transport_secret(x))
    return laptop, server, x, thief


def test_a_retired_device_is_refused_by_the_other_node(nodes: tuple) -> None:
    laptop, server, x, thief = nodes
    seed = Identities(server).open_seed(x, PASSWORD)
    private = build_post(seed, {"CREATED_TIME": int(time.time()) - 5, "TEXT": "secret",
                                "TO_FINGERPRINT": "ab" * 32})
    Ingestor(server).ingest_many([private], author=x)
    assert _ask(server, x, thief).posts == [private]  # the attack: the whole feed
    device = Identities(laptop).device_id(x)
    was = Identities(server).public_key(x).device(device)
    serial = Identities(server).retire_device(x, device, PASSWORD)
    held = Identities(server).public_key(x).device(device)
    assert was is not None and held is not None and held.serial == serial == RETIRED_SERIAL
    assert held.transport_public != was.transport_public
    with pytest.raises(NotAuthenticated):
        _ask(server, x, thief)


def test_a_contact_refuses_the_retired_device_after_its_next_exchange(
        tmp_path: Path, nodes: tuple) -> None:
    laptop, server, x, thief = nodes
    carol = make_datadir(tmp_path / "carol")
    c_ids = Identities(carol)
    c = c_ids.create(PASSWORD)
    c_ids.import_pub(Identities(laptop).pub_document(x))  # Carol follows X
    Identities(server).import_pub(c_ids.pub_document(c))
    to_x = build_post(c_ids.open_seed(c, PASSWORD), {
        "CREATED_TIME": int(time.time()) - 5, "TEXT": "for X only", "TO_FINGERPRINT": x})
    Ingestor(carol).ingest_many([to_x], author=c)
    assert _ask(carol, c, thief).posts == [to_x]  # the attack: X's private messages

    Identities(server).retire_device(x, Identities(laptop).device_id(x), PASSWORD)
    assert _ask(carol, c, thief).posts == [to_x]  # Carol has not heard of it yet
    # Carol's next sync of X from the server: message 2 carries the server's .pub
    carol_keys = exchange.OwnKeys(c, c_ids.pub_document(c), c_ids.transport_secret(c))
    told = _ask(server, x, carol_keys).owner_pub
    assert c_ids.update_pub(x, told, keep_newer=True)  # what sync.learn_owner_key does
    with pytest.raises(NotAuthenticated):
        _ask(carol, c, thief)


def test_what_cannot_be_retired(nodes: tuple) -> None:
    laptop, server, x, _ = nodes
    ids = Identities(server)
    before = ids.pub_document(x)
    with pytest.raises(BadInput):  # this node's own device: rotate it instead
        ids.retire_device(x, ids.device_id(x), PASSWORD)
    with pytest.raises(NotFound):
        ids.retire_device(x, "0123456789abcdef", PASSWORD)
    with pytest.raises(BadInput):
        ids.retire_device(x, "../../etc", PASSWORD)
    with pytest.raises(WrongPassword):
        ids.retire_device(x, Identities(laptop).device_id(x), "not the password at all")
    assert ids.pub_document(x) == before


@pytest.mark.parametrize("rotations", [1, 2])
def test_a_retire_from_a_node_that_missed_the_devices_rotations_still_wins(
        tmp_path: Path, nodes: tuple, rotations: int) -> None:
    """The laptop rotated (once: the same serial as the retire; twice: a higher one) and
    told Carol, not the server. The server's retire must still replace it at Carol: it
    used to be a key_conflict that broke every sync of X from the server (1) or a lower
    serial Carol silently ignored (2), and the thief stayed accepted either way."""
    laptop, server, x, _ = nodes
    carol = make_datadir(tmp_path / "carol")
    c_ids = Identities(carol)
    c = c_ids.create(PASSWORD)
    Identities(server).import_pub(c_ids.pub_document(c))
    for _ in range(rotations):
        Identities(laptop).rotate_transport(x, PASSWORD)
    c_ids.import_pub(Identities(laptop).pub_document(x))  # the laptop asked Carol since
    thief = exchange.OwnKeys(x, Identities(laptop).pub_document(x),
                             Identities(laptop).transport_secret(x))
    assert _ask(carol, c, thief).posts == []  # accepted (nothing addressed yet)

    Identities(server).retire_device(x, Identities(laptop).device_id(x), PASSWORD)
    carol_keys = exchange.OwnKeys(c, c_ids.pub_document(c), c_ids.transport_secret(c))
    told = _ask(server, x, carol_keys).owner_pub
    assert c_ids.update_pub(x, told, keep_newer=True)  # what sync.learn_owner_key does
    with pytest.raises(NotAuthenticated):
        _ask(carol, c, thief)


def test_retiring_from_two_nodes_or_twice_agrees(tmp_path: Path, nodes: tuple) -> None:
    """A worried owner retires the laptop from the server and from a third node: the two
    certificates are the same bytes, so contacts merge both (two random unusable keys
    under one serial used to be a key_conflict that broke syncing from one of the nodes)."""
    laptop, server, x, _ = nodes
    third = make_datadir(tmp_path / "third")
    import_identity(third, export_identity(server, x), PASSWORD)
    device = Identities(laptop).device_id(x)
    Identities(server).retire_device(x, device, PASSWORD)
    once = Identities(server).pub_document(x)
    assert Identities(server).retire_device(x, device, PASSWORD) == RETIRED_SERIAL
    assert Identities(server).pub_document(x) == once  # again: nothing changes
    Identities(third).retire_device(x, device, PASSWORD)
    carol = Identities(make_datadir(tmp_path / "carol"))
    carol.import_pub(once)
    carol.update_pub(x, Identities(third).pub_document(x), keep_newer=True)  # no conflict
    assert carol.public_key(x).device(device) == Identities(third).public_key(x).device(device)


def test_a_contact_no_longer_asks_with_the_retired_devices_key(
        tmp_path: Path, nodes: tuple) -> None:
    """The laptop made X, so its device is the first of X's .pub. Once Carol holds the
    retire, her sync asks the server with the server's key at once: a request to the
    retired key (nobody holds it) was refused at every sync and counted against her
    network's budget for failing requests (docs/protocol.md, Rotation)."""
    laptop, server, x, _ = nodes
    assert Identities(server).public_key(x).devices[0].device_id == \
        Identities(laptop).device_id(x)
    carol = make_datadir(tmp_path / "carol")
    c = Identities(carol).create(PASSWORD)
    Identities(server).retire_device(x, Identities(laptop).device_id(x), PASSWORD)
    Identities(carol).import_pub(Identities(server).pub_document(x))  # learnt before
    address = "http://10.0.0.9:8889"
    Contacts(carol).put(x, address, c)
    session, calls = session_with(routes({address: flask_handler(
        create_peer_app({"data_dir": str(server.root)}))}))
    st = sync_contact(carol, x, session=session)
    assert st.last_error is None
    assert [call.method for call in calls.calls] == ["POST"]  # one request, answered


def test_the_retired_node_is_told_why_the_retire_is_refused(nodes: tuple) -> None:
    """A laptop found again (or the thief's copy) hears of its retirement in an exchange:
    it keeps its own certificate, and the error says what happened and what to do."""
    laptop, server, x, _ = nodes
    device = Identities(laptop).device_id(x)
    Identities(server).retire_device(x, device, PASSWORD)
    with pytest.raises(KeyConflict, match=f"retired this node's device {device}.*identity "
                                          "export"):
        Identities(laptop).update_pub(x, Identities(server).pub_document(x), keep_newer=True)
    assert Identities(laptop).public_key(x).device(device).serial == 1
