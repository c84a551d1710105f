"""One identity on two own nodes (identityexport.py, ownsync.py, feeds.py; docs/protocol.md,
Several nodes of one identity): the export file, the import as a new device, the sync
between the two nodes both ways, and the visibility row for the identity itself."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.base.errors import BadInput, Conflict, WrongPassword
from app.core.network import identityexport, invitestate
from app.core.network.contacts import Contacts
from app.core.network.ownnodes import OwnNodes
from app.core.network.ownsync import sync_own_nodes
from app.core.network.sync import sync_contact
from app.core.posts.authoring import Draft, publish
from tests.helpers.datadirs import PASSWORD, snapshot
from tests.helpers.live_peers import LivePeer, live_peer


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LivePeer, LivePeer]]:
    with live_peer(tmp_path / "laptop") as laptop, \
            live_peer(tmp_path / "server", identity=False) as server:
        yield laptop, server


def test_the_export_file(pair: tuple[LivePeer, LivePeer], tmp_path: Path) -> None:
    laptop, _ = pair
    assert laptop.fp
    path = tmp_path / "ahmed.diwan-identity"
    identityexport.write_export(laptop.dd, laptop.fp, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_bytes())
    private = json.loads((laptop.dd.identities / laptop.fp).read_bytes())
    assert doc["sealed_seed"] == private["sealed_seed"] and doc["kdf"] == private["kdf"]
    assert doc["nodes"] == [laptop.address] and doc["fingerprint"] == laptop.fp
    for entry in private["transport"]:  # no transport secret leaves the node
        assert entry["secret"] not in path.read_text()


def test_import_needs_the_password_and_makes_a_new_device(
        pair: tuple[LivePeer, LivePeer]) -> None:
    laptop, server = pair
    assert laptop.fp
    data = identityexport.export_identity(laptop.dd, laptop.fp)
    before = snapshot(server.dd.root, "identities", "state")
    with pytest.raises(WrongPassword):
        identityexport.import_identity(server.dd, data, "not the password at all")
    assert snapshot(server.dd.root, "identities", "state") == before
    with pytest.raises(BadInput):
        identityexport.import_identity(server.dd, data.replace(b"v1", b"v9"), PASSWORD)
    done = identityexport.import_identity(server.dd, data, PASSWORD)
    assert server.ids.is_own(laptop.fp) and done["nodes"] == [laptop.address]
    key = server.ids.public_key(laptop.fp)
    assert [d.device_id for d in key.devices] == [laptop.ids.device_id(laptop.fp),
                                                   done["device"]]
    assert stat.S_IMODE((server.dd.identities / laptop.fp).stat().st_mode) == 0o600
    with pytest.raises(Conflict, match="already an own identity"):
        identityexport.import_identity(server.dd, data, PASSWORD)


def _message(node: LivePeer, to: str) -> str:
    assert node.fp
    return publish(node.dd, node.fp, PASSWORD, Draft(text="just us", to=[to])).sha1


def test_two_nodes_sync_the_whole_feed_both_ways(pair: tuple[LivePeer, LivePeer],
                                                 tmp_path: Path) -> None:
    laptop, server = pair
    fp = laptop.fp
    assert fp
    with live_peer(tmp_path / "basant") as basant, live_peer(tmp_path / "camal") as camal:
        assert basant.fp and camal.fp
        for node, other in ((laptop, basant), (laptop, camal), (basant, laptop),
                            (camal, laptop)):
            assert other.fp
            node.ids.import_pub(other.ids.pub_document(other.fp))
        identityexport.import_identity(server.dd, identityexport.export_identity(
            laptop.dd, fp), PASSWORD)
        [first] = sync_own_nodes(server.dd)
        assert first["last_error"] is None
        assert OwnNodes(laptop.dd).addresses(fp) == [server.address]  # learned by reply
        assert len(laptop.ids.public_key(fp).devices) == 2             # and the device

        public = publish(laptop.dd, fp, PASSWORD, Draft(text="from the laptop")).sha1
        private = _message(laptop, camal.fp)
        [run] = sync_own_nodes(server.dd)
        assert run["posts_last_run"] == 2
        assert {p.name for p in (server.dd.posts / fp).iterdir()} == {public, private}
        # ... and the key of the message's addressee, so the server serves it to Camal too
        assert server.ids.exists(camal.fp) and not server.ids.exists(basant.fp)
        camal.ids.import_pub(laptop.ids.pub_document(fp))
        Contacts(camal.dd).put(fp, server.address, camal.fp)
        assert sync_contact(camal.dd, fp).last_error is None
        assert (camal.dd.posts / fp / private).exists()

        from_server = publish(server.dd, fp, PASSWORD, Draft(text="from the server")).sha1
        [back] = sync_own_nodes(laptop.dd)
        assert back["last_error"] is None and (laptop.dd.posts / fp / from_server).exists()

        # Basant, pinned but not an addressee, gets the public posts only, from either node;
        # she holds Ahmed's key from before the server existed: asked at the server first,
        # her node asks the key again there (merged by the serial rule) and tries the new key
        assert len(basant.ids.public_key(fp).devices) == 1
        for address in (server.address, laptop.address):
            Contacts(basant.dd).put(fp, address, basant.fp)
            assert sync_contact(basant.dd, fp, full=True).last_error is None
            got = {p.name for p in (basant.dd.posts / fp).iterdir()}
            assert got == {public, from_server}


def test_an_invite_names_every_node_and_a_follower_falls_back(
        pair: tuple[LivePeer, LivePeer], tmp_path: Path) -> None:
    laptop, server = pair
    fp = laptop.fp
    assert fp
    identityexport.import_identity(server.dd, identityexport.export_identity(
        laptop.dd, fp), PASSWORD)
    sync_own_nodes(server.dd)
    text, invite = invitestate.make(laptop.dd, fp, laptop.seed())
    assert invite.addresses == (laptop.address, server.address)
    post = publish(laptop.dd, fp, PASSWORD, Draft(text="while you sleep")).sha1
    sync_own_nodes(server.dd)
    with live_peer(tmp_path / "basant") as basant:
        assert basant.fp
        invitestate.accept(basant.dd, text, basant.fp)
        laptop.stop()
        st = sync_contact(basant.dd, fp)
        assert st.last_error is None and (basant.dd.posts / fp / post).exists()


def test_own_nodes_follow_each_other_in_storage_order(pair: tuple[LivePeer, LivePeer]
                                                      ) -> None:
    """Issue 9 for the nodes of one identity: the pull between them keeps a cursor in the
    other node's storage order, so a post written there dated a day back (an offline
    draft, an import) still arrives after newer ones were pulled; the time cursor it used
    before (newest CREATED_TIME held minus sync_overlap) never asked for it."""
    laptop, server = pair
    fp = laptop.fp
    assert fp
    identityexport.import_identity(server.dd, identityexport.export_identity(laptop.dd, fp),
                                   PASSWORD)
    newer = publish(laptop.dd, fp, PASSWORD, Draft(text="today")).sha1
    assert sync_own_nodes(server.dd)[0]["last_error"] is None
    assert (server.dd.posts / fp / newer).exists()
    stored = json.loads((server.dd.state / "own_sync.json").read_bytes())
    [(device, cursor)] = stored[f"{fp} {laptop.address}"]["cursors"].items()
    assert device == laptop.ids.device_id(fp) and cursor["epoch"] and cursor["after"] > 0

    day_ago = int(time.time()) - 86400
    old = publish(laptop.dd, fp, PASSWORD, Draft(text="yesterday", created=day_ago)).sha1
    [run] = sync_own_nodes(server.dd)
    assert run["last_error"] is None and run["posts_last_run"] == 1
    assert (server.dd.posts / fp / old).exists()
