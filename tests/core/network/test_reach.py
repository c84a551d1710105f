"""Addresses that follow you: several addresses per contact, told inside the exchange.

The owner is the real peer app of another data directory run in-process
(:func:`fake_peers.flask_handler`); addresses that do not answer are routes
with no handler (a refused connection).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app import create_peer_app
from app.core.base import noise
from app.core.base.datadir import DataDir
from app.core.base.errors import BadRequestEnvelope, BadResponse
from app.core.identity.identities import Identities
from app.core.network import exchange, pages
from app.core.network.contacts import Contacts
from app.core.network.exchange import OwnKeys
from app.core.network.sync import StatusStore, sync_contact
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import copy_node, flask_handler, routes, session_with

OLD = "http://10.0.0.2:8889"        # where Basant's node was
NEW = "http://10.0.0.9:8889"        # where it is now
AHMED_AT = ("10.0.0.1", 8889)       # where Ahmed's node listens
NOW = int(time.time())
BASANT = {"peer_host": "10.0.0.9", "peer_port": 8889, "public_url": "http://basant.example:8889"}


@dataclass
class World:
    template: DataDir
    a: str
    b: str
    seed_b: bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    ids = Identities(dd)
    a, b = ids.create(PASSWORD), ids.create(PASSWORD)
    return World(dd, a, b, ids.open_seed(b, PASSWORD))


@dataclass
class Pair:
    ahmed: DataDir
    basant: DataDir
    w: World

    def post(self, created: int) -> str:
        raw = build_post(self.w.seed_b, {"CREATED_TIME": created, "TEXT": f"at {created}"})
        return Ingestor(self.basant).ingest(raw).sha1

    def sync(self, table: dict[str, Any]) -> tuple[Any, list[str]]:
        session, transport = session_with(routes(table))
        return sync_contact(self.ahmed, self.w.b, session=session), transport.urls()

    def basant_at(self, *where: str) -> dict[str, Any]:
        handler = flask_handler(create_peer_app({"data_dir": str(self.basant.root),
                                                 **BASANT}))
        return dict.fromkeys(where, handler)


def _pub(w: World, fp: str) -> bytes:
    return w.template.identities.joinpath(f"{fp}.pub").read_bytes()


@pytest.fixture
def pair(tmp_path: Path, world: World) -> Pair:
    a = copy_node(tmp_path / "ahmed", world.template, [world.a], peer_host=AHMED_AT[0],
                  peer_port=AHMED_AT[1])
    b = copy_node(tmp_path / "basant", world.template, [world.b], **BASANT)
    Identities(a).import_pub(_pub(world, world.b))
    Identities(b).import_pub(_pub(world, world.a))
    Contacts(a).put(world.b, OLD, world.a)
    return Pair(a, b, world)


# the exchange carries addresses both ways ---------------------------------------------

def test_the_owner_tells_its_addresses_and_the_asker_learns_them(pair: Pair) -> None:
    """Basant's node answers at OLD and tells where else it is; Ahmed's contact keeps the
    hand-set address and learns the others."""
    pair.post(NOW - 100)
    st, _ = pair.sync(pair.basant_at(OLD))
    assert st.last_error is None
    contact = Contacts(pair.ahmed).get(pair.w.b)
    assert contact.addresses == (OLD,)
    assert contact.learned == ("http://basant.example:8889", NEW)


def test_the_asker_tells_where_it_is_and_a_following_owner_learns_it(pair: Pair) -> None:
    """Basant follows Ahmed (at an address he has left): his request tells her node where
    he is now, and her contact entry for him learns it."""
    Contacts(pair.basant).put(pair.w.a, "http://10.0.0.55:8889", pair.w.b)
    st, _ = pair.sync(pair.basant_at(OLD))
    assert st.last_error is None
    ahmed = Contacts(pair.basant).get(pair.w.a)
    assert ahmed.addresses == ("http://10.0.0.55:8889",)  # hand-set, kept
    assert ahmed.learned == ("http://10.0.0.1:8889",)


def test_a_stranger_is_told_nothing_and_never_becomes_a_contact(pair: Pair) -> None:
    """Basant does not follow Ahmed and does not hold his key: nothing is stored for
    him, and her node tells him no address."""
    Identities(pair.basant).delete(pair.w.a)
    before = json.loads((pair.basant.state / "contacts.json").read_bytes()) \
        if (pair.basant.state / "contacts.json").exists() else {}
    st, _ = pair.sync(pair.basant_at(OLD))
    assert st.last_error is None
    after = json.loads((pair.basant.state / "contacts.json").read_bytes()) \
        if (pair.basant.state / "contacts.json").exists() else {}
    assert before == after == {}
    assert Contacts(pair.ahmed).get(pair.w.b).learned == ()


def test_a_contact_that_moved_is_found_at_a_learned_address(pair: Pair) -> None:
    """The hand-set address is dead; the learned one answers; the next sync tries the
    one that worked first and leaves the dead one in its own back-off."""
    Contacts(pair.ahmed).learn(pair.w.b, [NEW], 8)
    sha = pair.post(NOW - 50)
    st, urls = pair.sync(pair.basant_at(NEW))  # nothing answers at OLD any more
    assert st.last_error is None and st.posts_last_run == 1
    assert (pair.ahmed.posts / pair.w.b / sha).exists()
    assert [u.split("/feeds")[0] for u in urls] == [OLD, NEW]
    stored = StatusStore(pair.ahmed).get(pair.w.b)
    assert stored.address == NEW and stored.reach[NEW]["failures"] == 0
    assert stored.reach[OLD]["failures"] == 1 and stored.reach[OLD]["next"] > time.time()
    _, urls = pair.sync(pair.basant_at(NEW))
    assert [u.split("/feeds")[0] for u in urls] == [NEW]  # OLD is backing off alone


def test_every_address_failing_is_one_failure_naming_the_first(pair: Pair) -> None:
    Contacts(pair.ahmed).learn(pair.w.b, [NEW], 8)
    st, urls = pair.sync({})
    assert st.failures == 1 and "10.0.0.2:8889 could not be reached" in (st.last_error or "")
    assert [u.split("/feeds")[0] for u in urls] == [OLD, NEW]


def test_an_older_node_that_refuses_reach_is_asked_again_without_it(pair: Pair) -> None:
    """A node from before "reach" answers 400 bad_request to it: the asker asks again
    without it, so syncing with older nodes keeps working."""
    sha = pair.post(NOW - 30)
    real = pair.basant_at(OLD)[OLD]
    tk = Identities(pair.basant).transport_keys(pair.w.b)[0]
    slot = noise.Keypair(tk.secret, tk.public)
    refused = []

    def older(call: Any) -> Any:
        if "/feeds/" in call.url:
            opened = exchange.open_request(call.body, owner_fp=pair.w.b, slots=[slot])
            if b'"reach"' in opened.request_json:
                refused.append(call.url)
                return 400, json.dumps({"code": 400, "status": "bad_request",
                                        "message": "the feed-request must be an object with "
                                                   "exactly the keys ..."}).encode(), \
                    {"Content-Type": "application/json"}
        return real(call)

    st, _ = pair.sync({OLD: older})
    assert st.last_error is None and refused
    assert (pair.ahmed.posts / pair.w.b / sha).exists()


# the address book ------------------------------------------------------------------------

def test_learning_never_removes_a_hand_set_address_and_keeps_a_bounded_list(
        pair: Pair) -> None:
    book = Contacts(pair.ahmed)
    many = [f"http://10.0.1.{i}:8889" for i in range(20)]
    assert book.learn(pair.w.b, [OLD, *many], 8)
    contact = book.get(pair.w.b)
    assert contact.addresses == (OLD,) and contact.learned == tuple(many[:8])
    assert not book.learn(pair.w.b, many[:3], 8)  # nothing new: not written again
    assert book.learn(pair.w.b, ["http://10.0.2.1:8889", "not an address"], 8)
    assert book.get(pair.w.b).learned[0] == "http://10.0.2.1:8889"
    assert not book.learn(pair.w.a, many, 8)  # not a contact: no entry made
    assert book.find(pair.w.a) is None


def test_an_older_contacts_file_loads_and_a_replaced_address_keeps_the_learned(
        pair: Pair) -> None:
    path = pair.ahmed.state / "contacts.json"
    old = {pair.w.b: {"addresses": [OLD], "identity": pair.w.a, "added": 1.0}}
    path.write_text(json.dumps(old))
    assert Contacts(pair.ahmed).get(pair.w.b).learned == ()
    Contacts(pair.ahmed).learn(pair.w.b, [NEW], 8)
    Contacts(pair.ahmed).put(pair.w.b, "http://10.0.0.3:8889", pair.w.a)
    again = Contacts(pair.ahmed).get(pair.w.b)
    assert again.addresses == ("http://10.0.0.3:8889",) and again.learned == (NEW,)


def test_addresses_are_tried_by_last_success_then_listed_order() -> None:
    from app.core.network import reach
    from app.core.network.contacts import Contact
    from app.core.network.syncstatus import SyncStatus

    c = Contact("b" * 64, ("http://h:1",), "a" * 64, 0.0, ("http://l1:1", "http://l2:1"))
    st = SyncStatus(c.fingerprint)
    assert reach.order(c, st, 100.0) == ["http://h:1", "http://l1:1", "http://l2:1"]
    s = {"sync_interval": 10, "sync_max_backoff": 1000}
    reach.record(st, "http://l2:1", True, 50.0, s)
    reach.record(st, "http://h:1", False, 90.0, s)
    assert reach.order(c, st, 100.0) == ["http://l2:1", "http://l1:1"]
    for a in c.every_address:
        reach.record(st, a, False, 100.0, s)  # h, l1: a second failure; l2: its first
    assert reach.order(c, st, 101.0) == ["http://l2:1"]  # all backing off: the soonest only


# the wire -----------------------------------------------------------------------------

def _asker(w: World) -> OwnKeys:
    ids = Identities(w.template)
    return OwnKeys(w.a, ids.pub_document(w.a), ids.transport_secret(w.a))


def _open(w: World, body: bytes) -> exchange.OpenedRequest:
    tk = Identities(w.template).transport_keys(w.b)[0]
    return exchange.open_request(body, owner_fp=w.b, slots=[noise.Keypair(tk.secret, tk.public)])


def _request(w: World, reach_: list[str] | None) -> tuple[bytes, exchange.PendingRequest]:
    owner = Identities(w.template).public_key(w.b).transport_public
    return exchange.build_request(asker=_asker(w), owner_fp=w.b, owner_transport=owner,
                                  after=0, limit=10, now=NOW,
                                  reach=reach_)


def test_reach_fits_the_fixed_request_and_bad_reach_is_refused(world: World) -> None:
    long = [f"http://{'x' * 60}.{'y' * 60}{i}.example:8889" for i in range(20)]
    body, pending = _request(world, long)
    assert len(body) == exchange.REQUEST_BYTES
    assert pending.reach is not None and 0 < len(pending.reach) < exchange.MAX_REACH
    req = exchange.parse_request(_open(world, body), now=NOW, window=300, max_limit=100)
    assert req.reach == pending.reach
    old_body, _ = _request(world, None)
    assert exchange.parse_request(_open(world, old_body), now=NOW, window=300,
                                  max_limit=100).reach is None
    for bad in ("http://a:1", ["ftp://a:1"], ["http://a:1"] * 0 + ["x"] * 9):
        opened = _open(world, _request(world, [])[0])
        doc = json.loads(opened.request_json)
        doc["reach"] = bad
        opened.request_json = json.dumps(doc).encode()
        with pytest.raises(BadRequestEnvelope):
            exchange.parse_request(opened, now=NOW, window=300, max_limit=100)


def test_an_address_record_nobody_asked_for_is_refused(world: World) -> None:
    body, pending = _request(world, None)
    pub = Identities(world.template).pub_document(world.b)
    answer = exchange.respond(_open(world, body), owner_pub=pub, posts=[], more=False,
                              max_bytes=10**6, addresses=["http://10.0.0.9:8889"])
    with pytest.raises(BadResponse):
        exchange.open_response(answer, pending, max_bytes=10**6)
    body, pending = _request(world, [])
    answer = exchange.respond(_open(world, body), owner_pub=pub, posts=[], more=False,
                              max_bytes=10**6, addresses=["http://10.0.0.9:8889"])
    got = exchange.open_response(answer, pending, max_bytes=10**6)
    assert got.addresses == ["http://10.0.0.9:8889"] and got.posts == []
    assert pages.parse_stream(pages.epoch_record(1) + b"\x00\x00").addresses == []

