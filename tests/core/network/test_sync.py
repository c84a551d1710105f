"""The sync engine: cursors in the owner's order, paging, status and back-off, parallel contacts.

The owner is the real peer app of another data directory run in-process
(:func:`fake_peers.flask_handler`), or, for hostile and failing owners, a
handler that opens the real request and seals whatever the test wants.
"""

from __future__ import annotations

import hashlib
import json
import stat
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from app import create_peer_app
from app.core.base import noise
from app.core.base.datadir import DataDir
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network import exchange
from app.core.network.contacts import Contacts
from app.core.network.keylookup import LyingPeers
from app.core.network.sync import (
    StatusStore,
    SyncStatus,
    backoff,
    is_due,
    statuses,
    sync_all,
    sync_contact,
)
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from app.core.posts.reconcile import open_index
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import (
    Call,
    Reply,
    copy_node,
    flask_handler,
    other_key,
    routes,
    session_with,
)

B_ADDR = "http://10.0.0.2:8889"
C_ADDR = "http://10.0.0.3:8889"
NOW = int(time.time())


@dataclass
class World:
    template: DataDir
    a: str       # Ahmed (asker)
    a2: str      # Ahmed's second, separate identity
    b: str       # Basant (owner)
    c: str       # Camal
    seeds: dict[str, bytes]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    ids = Identities(dd)
    a, a2, b, c = (ids.create(PASSWORD) for _ in range(4))
    return World(dd, a, a2, b, c, {fp: ids.open_seed(fp, PASSWORD) for fp in (b, c)})


@dataclass
class Pair:
    ahmed: DataDir
    basant: DataDir
    w: World
    basant_settings: dict[str, Any]
    count: int = 0

    def post(self, created: int, owner: str | None = None, **attrs: Any) -> str:
        owner = owner or self.w.b
        self.count += 1
        raw = build_post(self.w.seeds[owner], {"CREATED_TIME": created,
                                               "TEXT": f"hi {self.count}", **attrs})
        return Ingestor(self.basant).ingest(raw).sha1

    def held(self) -> set[str]:
        folder = self.ahmed.posts / self.w.b
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def session(self) -> requests.Session:
        app = create_peer_app({"data_dir": str(self.basant.root), **self.basant_settings})
        return session_with(routes({B_ADDR: flask_handler(app)}))[0]

    def sync(self, **kw: Any) -> SyncStatus:
        return sync_contact(self.ahmed, self.w.b, session=self.session(), **kw)


def make_pair(tmp_path: Path, w: World, ahmed: dict[str, Any] | None = None,
              basant: dict[str, Any] | None = None) -> Pair:
    a = copy_node(tmp_path / "ahmed", w.template, [w.a, w.a2], **(ahmed or {}))
    b = copy_node(tmp_path / "basant", w.template, [w.b, w.c], **(basant or {}))
    Identities(a).import_pub(w.template.identities.joinpath(f"{w.b}.pub").read_bytes())
    for asker in (w.a, w.a2):  # Basant holds Ahmed's keys: he is no stranger to her node
        Identities(b).import_pub(w.template.identities.joinpath(f"{asker}.pub").read_bytes())
    Contacts(a).put(w.b, B_ADDR, w.a)
    return Pair(a, b, w, basant or {})


@pytest.fixture
def pair(tmp_path: Path, world: World) -> Pair:
    return make_pair(tmp_path, world)


def fake_owner(owner_dd: DataDir, owner: str,
               pages: Callable[[exchange.FeedRequest], tuple[list[bytes], bool]],
               seen: list[tuple[str, exchange.FeedRequest]] | None = None,
               positions: Callable[[exchange.FeedRequest, int], list[int]] | None = None
               ) -> Callable[[Call], Reply]:
    """An owner node that opens the real request and answers ``pages(request)`` (at
    ``positions(request, n)``, by default after + 1, after + 2, ...); ``seen`` gets
    (asker fingerprint, request) of each."""
    ids = Identities(owner_dd)
    current = ids.transport_keys(owner)[0]
    slot, pub = noise.Keypair(current.secret, current.public), ids.pub_document(owner)

    def handle(call: Call) -> Reply:
        opened = exchange.open_request(call.body, owner_fp=owner, slots=[slot])
        req = exchange.parse_request(opened, now=int(time.time()), window=300, max_limit=500)
        if seen is not None:
            seen.append((keys.parse_pub(opened.pub_document).fingerprint, req))
        posts, more = pages(req)
        at = positions(req, len(posts)) if positions else [
            req.after + 1 + n for n in range(len(posts))]
        summary = [(p, hashlib.sha1(raw).digest()[:8]) for p, raw in zip(at, posts, strict=True)]
        body = exchange.respond(opened, owner_pub=pub, posts=[] if req.summary else posts,
                                more=more, max_bytes=10**8, positions=at,
                                summary=summary if req.summary else None)
        return 200, body, {"Content-Type": "application/octet-stream"}

    return handle


# arithmetic -----------------------------------------------------------------------------

def test_backoff_doubles_up_to_the_cap() -> None:
    s = {"sync_interval": 600, "sync_max_backoff": 6 * 3600}
    assert [backoff(s, n) for n in range(6)] == [0, 1200, 2400, 4800, 9600, 19200]
    assert backoff(s, 6) == backoff(s, 10**6) == 6 * 3600


def test_due_unless_backing_off() -> None:
    s = {"sync_interval": 600}
    st = SyncStatus("f" * 64)
    assert is_due(s, st, 0)
    st.next_attempt = 10_000.0
    assert not is_due(s, st, 10_000 - 61)
    assert is_due(s, st, 10_000 - 60)  # the scheduler's jitter does not cost a whole interval


def test_status_from_junk_is_empty() -> None:
    st = SyncStatus.from_dict("f" * 64, {"failures": "3", "last_error": 5, "posts_received": 7,
                                         "cursors": [1], "skipped": "x", "blocked": True})
    assert (st.failures, st.posts_received, st.cursors, st.skipped, st.blocked) == (
        0, 7, {}, None, False)
    assert SyncStatus.from_dict("f" * 64, ["not", "a", "dict"]) == SyncStatus("f" * 64)


# pulling a real feed --------------------------------------------------------------------

def test_a_reshared_authors_key_comes_from_the_owner_inside_the_exchange(
        pair: Pair, world: World) -> None:
    """Camal's key reaches Ahmed from Basant's node in the authenticated exchange; no
    plain GET /identities answers it (every other route is a 404)."""
    original = build_post(world.seeds[world.c], {"CREATED_TIME": NOW - 500, "TEXT": "camal"})
    Identities(pair.basant).import_pub(
        world.template.identities.joinpath(f"{world.c}.pub").read_bytes())
    reshare = pair.post(NOW - 400, RESHARED_POST=original.decode())
    app = create_peer_app({"data_dir": str(pair.basant.root)})
    real = flask_handler(app)

    def feeds_only(call: Call) -> Reply:
        if "/feeds/" in call.url:
            return real(call)
        return 404, b"{}", {"Content-Type": "application/json"}

    session, transport = session_with(routes({B_ADDR: feeds_only}))
    assert not Identities(pair.ahmed).exists(world.c)
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert st.last_error is None and reshare in pair.held()
    assert Identities(pair.ahmed).exists(world.c)
    assert not any("/identities/" in u for u in transport.urls())

def test_public_and_addressed_posts_arrive_once(pair: Pair, world: World) -> None:
    public = {pair.post(NOW - 3000 + i) for i in range(5)}
    to_ahmed = pair.post(NOW - 2000, TO_FINGERPRINT=world.a)
    to_other_me = pair.post(NOW - 1990, TO_FINGERPRINT=world.a2)
    pair.post(NOW - 1980, TO_FINGERPRINT=world.c)
    st = pair.sync()
    assert st.last_error is None and st.failures == 0 and st.last_success is not None
    assert pair.held() == public | {to_ahmed}
    assert to_other_me not in pair.held()  # asked as a, never as a2
    assert (st.posts_last_run, st.posts_received) == (6, 6)
    [cursor] = st.cursors.values()   # one serving node: Basant's
    assert cursor["identity"] == world.a and cursor["after"] > 0 and cursor["epoch"] > 0
    again = pair.sync()
    assert (again.posts_last_run, again.posts_received, again.last_error) == (0, 6, None)
    path = pair.ahmed.state / "sync" / f"{world.b}.json"
    stored = json.loads(path.read_bytes())
    assert stored["posts_received"] == 6 and "skipped" not in stored and "blocked" not in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_backdated_posts_arrive_with_the_next_sync(pair: Pair) -> None:
    """Issue 9, fault 1: the order the owner stored posts in decides, not CREATED_TIME."""
    pair.post(NOW - 5000)
    pair.post(NOW - 1000)
    pair.sync()
    backdated = pair.post(NOW - 3600 * 24 * 365)   # written after the sync, dated a year ago
    normal = pair.post(NOW)
    st = pair.sync()
    assert {backdated, normal} <= pair.held() and st.posts_last_run == 2
    assert pair.sync().posts_last_run == 0


def test_an_imported_post_arrives(pair: Pair, world: World) -> None:
    """What POST /posts/import does: ingest a post signed long ago (a backup)."""
    pair.post(NOW - 100)
    pair.sync()
    old = build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 10**7, "TEXT": "from 2026"})
    sha = Ingestor(pair.basant).ingest(old).sha1
    assert pair.sync().posts_last_run == 1 and sha in pair.held()


def test_a_post_written_on_another_device_arrives(tmp_path: Path, world: World) -> None:
    """A post file of Basant's made elsewhere (another device of hers, a restored copy)
    dropped into posts/<FP>/ behind the index's back: the repair stores it, last."""
    pair = make_pair(tmp_path, world, basant={"reconcile_interval_ms": 0})
    pair.post(NOW - 100)
    pair.sync()
    raw = build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 7200, "TEXT": "phone"})
    sha = hashlib.sha1(raw).hexdigest()
    (pair.basant.posts / world.b / sha).write_bytes(raw)
    assert pair.sync().posts_last_run == 1 and sha in pair.held()


def test_a_full_sync_fetches_only_what_is_missing(pair: Pair, world: World) -> None:
    shas = [pair.post(NOW - 500 + i) for i in range(6)]
    pair.sync()
    for gone in (shas[1], shas[4]):  # removed here behind the index's back
        (pair.ahmed.posts / world.b / gone).unlink()
    st = pair.sync(full=True)
    assert pair.held() == set(shas)
    assert (st.posts_last_run, st.pages_last_run) == (2, 2)  # two runs of one post each


def test_a_full_sync_stops_at_the_request_budget_and_the_next_one_finishes(
        tmp_path: Path, world: World) -> None:
    """Fetching a comparison's runs (the next page asked ahead) stops at sync_max_pages
    requests, the summary included; what was stored stays and the next sync fetches the
    rest."""
    pair = make_pair(tmp_path, world, ahmed={"max_page_size": 1, "sync_max_pages": 3})
    shas = [pair.post(NOW - 500 + i) for i in range(5)]
    pair.sync()
    pair.sync()
    assert pair.held() == set(shas)
    for gone in shas[1:5]:
        (pair.ahmed.posts / world.b / gone).unlink()
    first = pair.sync(full=True)  # the summary and two pages of one post
    assert first.last_error is None and first.pages_last_run == 2
    assert pair.held() == set(shas[:3])
    second = pair.sync(full=True)
    assert second.last_error is None and pair.held() == set(shas)


def test_first_sync_without_status_compares_and_fetches_only_what_lacks(pair: Pair) -> None:
    pair.post(NOW - 5000)
    pair.post(NOW - 1000)
    pair.sync()
    (pair.ahmed.state / "sync" / f"{pair.w.b}.json").unlink()
    late = pair.post(NOW - 1050)
    early = pair.post(NOW - 4000)
    st = pair.sync()
    assert (st.posts_last_run, st.pages_last_run) == (2, 1)  # one run: the two new ones
    assert {late, early} <= pair.held()


def test_a_rebuilt_owner_index_costs_a_summary_not_the_feed(pair: Pair, world: World) -> None:
    from app.core.posts.reconcile import rebuild

    shas = {pair.post(NOW - 500 + i) for i in range(5)}
    first = pair.sync()
    [old] = first.cursors.values()
    rebuild(open_index(pair.basant))
    new = pair.post(NOW - 3000)
    st = pair.sync()
    assert pair.held() == shas | {new}
    assert (st.posts_last_run, st.pages_last_run) == (1, 1)
    [cursor] = st.cursors.values()
    assert cursor["epoch"] != old["epoch"]
    assert pair.sync().posts_last_run == 0


def test_pages_with_tied_times_neither_skip_nor_repeat(tmp_path: Path, world: World) -> None:
    pair = make_pair(tmp_path, world, ahmed={"max_page_size": 3})
    shas = {pair.post(NOW - 100) for _ in range(7)} | {pair.post(NOW - 50)}
    st = pair.sync()
    assert pair.held() == shas
    assert (st.posts_last_run, st.pages_last_run) == (8, 3)


@pytest.mark.parametrize(("own", "pages"), [({"sync_page_size": 3}, 3),
                                             ({"sync_page_size": 4, "max_page_size": 2}, 4)])
def test_a_sync_asks_for_sync_page_size_posts_a_page(tmp_path: Path, world: World,
                                                       own: dict[str, int], pages: int) -> None:
    # at most sync_page_size a page, and never more than this node's own max_page_size
    pair = make_pair(tmp_path, world, ahmed=own)
    shas = {pair.post(NOW - 100 + i) for i in range(7)}
    st = pair.sync()
    assert st.last_error is None and pair.held() == shas
    assert (st.posts_last_run, st.pages_last_run) == (7, pages)


def test_smaller_pages_when_the_owner_allows_less(tmp_path: Path, world: World) -> None:
    pair = make_pair(tmp_path, world, basant={"max_page_size": 5})
    shas = {pair.post(NOW - 100 + i) for i in range(7)}
    st = pair.sync()  # asks for 500 a page, gets 5 and "more"
    assert st.last_error is None and pair.held() == shas and st.pages_last_run == 2


@pytest.mark.parametrize("pages", [3, 4])
def test_max_pages_edge_and_resume(tmp_path: Path, world: World, pages: int) -> None:
    pair = make_pair(tmp_path, world, ahmed={"max_page_size": 1, "sync_max_pages": pages})
    shas = [pair.post(NOW - 100 + i) for i in range(4)]
    first = pair.sync()
    assert first.pages_last_run == pages and first.last_error is None
    assert pair.held() == set(shas[:pages])
    second = pair.sync()  # continues where the first stopped
    assert pair.held() == set(shas) and second.posts_last_run == 4 - pages


def test_changing_the_following_identity_starts_over(pair: Pair, world: World) -> None:
    pair.post(NOW - 2000)
    hidden = pair.post(NOW - 1900, TO_FINGERPRINT=world.a2)
    pair.post(NOW - 100)
    pair.sync()
    Contacts(pair.ahmed).put(world.b, B_ADDR, world.a2)
    st = pair.sync()
    assert hidden in pair.held() and st.posts_last_run == 1 and st.identity == world.a2


# failures, back-off, hostile owners ----------------------------------------------------------

def down(call: Call) -> Reply:
    raise requests.ConnectionError("refused")


def test_failures_back_off_and_success_resets(pair: Pair, world: World) -> None:
    session, _ = session_with(down)
    t = [1000.0]
    st = sync_contact(pair.ahmed, world.b, session=session, clock=lambda: t[0])
    assert "could not be reached" in (st.last_error or "")
    assert (st.failures, st.next_attempt, st.last_attempt) == (1, 1000.0 + 1200, 1000.0)
    st = sync_contact(pair.ahmed, world.b, session=session, clock=lambda: t[0])
    assert (st.failures, st.next_attempt) == (2, 1000.0 + 2400)
    assert StatusStore(pair.ahmed).get(world.b).failures == 2
    st = pair.sync()
    assert (st.failures, st.next_attempt, st.last_error) == (0, None, None)


def test_sync_all_skips_backing_off_contacts_unless_forced(pair: Pair, world: World) -> None:
    session, transport = session_with(down)
    sync_contact(pair.ahmed, world.b, session=session)
    [st] = sync_all(pair.ahmed, session_factory=lambda: session)
    assert st.skipped == "backing off" and transport.calls.__len__() == 1
    [st] = sync_all(pair.ahmed, force=True, session_factory=lambda: session)
    assert st.skipped is None and st.failures == 2 and len(transport.calls) == 2


def test_blocked_contacts_are_skipped(pair: Pair, world: World) -> None:
    Identities(pair.ahmed).block(world.b)
    [st] = sync_all(pair.ahmed, force=True, session_factory=pair.session)
    assert st.skipped == "blocked" and pair.held() == set()


def test_a_lying_address_is_not_asked(pair: Pair, world: World) -> None:
    LyingPeers(pair.ahmed).record(B_ADDR, other_key()[0], "test")
    session, transport = session_with(down)
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert "lying peer" in (st.last_error or "") and transport.calls == []


def test_a_following_identity_that_is_gone_is_an_error(pair: Pair, world: World) -> None:
    (pair.ahmed.identities / world.a).unlink()
    st = pair.sync()
    assert "no longer an own identity" in (st.last_error or "") and st.failures == 1


def test_rejected_posts_are_counted_not_fatal(pair: Pair, world: World) -> None:
    good = build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 10, "TEXT": "ok"})
    by_other = build_post(world.seeds[world.c], {"CREATED_TIME": NOW - 5, "TEXT": "not hers"})
    session, _ = session_with(fake_owner(pair.basant, world.b,
                                         lambda req: ([good, b"garbage", by_other], False)))
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert st.last_error is None and st.posts_last_run == 1
    assert (st.rejected_last_run, st.rejected) == (2, 2)
    assert st.last_rejection == "wrong_author"
    assert not (pair.ahmed.posts / world.c).exists()


def test_an_owner_that_never_advances_is_an_error(pair: Pair, world: World) -> None:
    same = build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 10, "TEXT": "loop"})
    session, transport = session_with(fake_owner(pair.basant, world.b,
                                                 lambda req: ([same], True),
                                                 positions=lambda req, n: [7] * n))
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert "not after the one asked for" in (st.last_error or "")
    assert len(transport.calls) == 2
    assert st.posts_received == 1  # what arrived is kept


@pytest.mark.parametrize("summary", [False, True])
def test_a_position_beyond_2_53_is_a_bad_response(pair: Pair, world: World, summary: bool
                                                  ) -> None:
    """Positions are 1 to 2^53-1 (docs/protocol.md, Positions and epochs): one beyond is
    refused, not stored as a cursor no request can carry (found by the tester of issue 8:
    the cursor was kept, then dropped as damaged, and every later sync compared sets)."""
    raw = build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 10, "TEXT": "far"})
    if summary:  # a follower already holding a post of the feed asks for the summary first
        Ingestor(pair.ahmed).ingest_many([build_post(world.seeds[world.b], {
            "CREATED_TIME": NOW - 20, "TEXT": "held"})])
    session, _ = session_with(fake_owner(pair.basant, world.b, lambda req: ([raw], False),
                                         positions=lambda req, n: [2**53] * n))
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert "position" in (st.last_error or ""), st.last_error
    assert hashlib.sha1(raw).hexdigest() not in pair.held() and st.cursors == {}


def test_an_owner_that_says_more_but_sends_nothing_is_an_error(pair: Pair,
                                                               world: World) -> None:
    session, transport = session_with(fake_owner(pair.basant, world.b, lambda req: ([], True)))
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert "more posts remain" in (st.last_error or "") and len(transport.calls) == 1


def test_a_post_refused_for_now_is_asked_for_again(pair: Pair, world: World) -> None:
    """A post from a clock running ahead is refused now; the cursor stays before it."""
    future = build_post(world.seeds[world.b], {"CREATED_TIME": NOW + 3600, "TEXT": "soon"})
    after = build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 10, "TEXT": "now"})
    session, _ = session_with(fake_owner(
        pair.basant, world.b, lambda req: ([future, after][req.after:req.after + req.limit],
                                           False)))
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert (st.rejected_last_run, st.last_rejection, st.posts_last_run) == (
        1, "future_time", 1)
    assert st.cursors == {}   # nothing to keep before the refused post
    again = sync_contact(pair.ahmed, world.b, session=session)  # compares: asks for it alone
    assert (again.rejected_last_run, again.posts_last_run, again.pages_last_run) == (1, 0, 1)


def test_each_contact_is_asked_as_its_own_identity(pair: Pair, world: World) -> None:
    Identities(pair.ahmed).import_pub(
        world.template.identities.joinpath(f"{world.c}.pub").read_bytes())
    Contacts(pair.ahmed).put(world.c, C_ADDR, world.a2)
    seen: list[tuple[str, exchange.FeedRequest]] = []

    def empty(req: exchange.FeedRequest) -> tuple[list[bytes], bool]:
        return [], False

    handler = routes({B_ADDR: fake_owner(pair.basant, world.b, empty, seen),
                      C_ADDR: fake_owner(pair.basant, world.c, empty, seen)})
    results = sync_all(pair.ahmed, session_factory=lambda: session_with(handler)[0])
    assert [r.last_error for r in results] == [None, None]
    assert {(r.owner_fp, asker) for asker, r in seen} == {(world.b, world.a), (world.c, world.a2)}


def test_a_slow_contact_does_not_delay_the_others(tmp_path: Path, world: World) -> None:
    pair = make_pair(tmp_path, world, ahmed={"sync_parallel": 2})
    Identities(pair.ahmed).import_pub(
        world.template.identities.joinpath(f"{world.c}.pub").read_bytes())
    Contacts(pair.ahmed).put(world.c, C_ADDR, world.a)
    fast_done = threading.Event()
    fast = fake_owner(pair.basant, world.c, lambda req: ([], False))
    normal = fake_owner(pair.basant, world.b, lambda req: ([], False))

    def slow(call: Call) -> Reply:
        released = fast_done.wait(30)
        if not released:
            raise RuntimeError("the fast contact waited for the slow one")
        return normal(call)

    order: list[str] = []

    def progress(st: SyncStatus) -> None:
        order.append(st.fingerprint)
        if st.fingerprint == world.c:
            fast_done.set()

    handler = routes({B_ADDR: slow, C_ADDR: fast})
    results = sync_all(pair.ahmed, progress=progress,
                       session_factory=lambda: session_with(handler)[0])
    assert order == [world.c, world.b], results
    assert [r.last_error for r in results] == [None, None]


def test_one_contact_crashing_does_not_stop_the_others(tmp_path: Path, world: World) -> None:
    pair = make_pair(tmp_path, world)
    Identities(pair.ahmed).import_pub(
        world.template.identities.joinpath(f"{world.c}.pub").read_bytes())
    Contacts(pair.ahmed).put(world.c, C_ADDR, world.a)
    sha = pair.post(NOW - 10)

    def crash(call: Call) -> Reply:
        raise RuntimeError("bug")

    app = flask_handler(create_peer_app({"data_dir": str(pair.basant.root)}))
    handler = routes({B_ADDR: app, C_ADDR: crash})
    results = {r.fingerprint: r for r in sync_all(
        pair.ahmed, session_factory=lambda: session_with(handler)[0])}
    assert results[world.b].last_error is None and pair.held() == {sha}
    assert "internal error (RuntimeError)" in (results[world.c].last_error or "")
    assert results[world.c].failures == 1


def test_statuses_cover_every_contact_and_drop_removed_ones(pair: Pair, world: World) -> None:
    [st] = statuses(pair.ahmed)
    assert st.fingerprint == world.b and st.state() == "never" and st.address == B_ADDR
    pair.sync()
    assert statuses(pair.ahmed)[0].state() == "ok"
    other, doc, _ = other_key()
    Identities(pair.ahmed).import_pub(doc)
    Contacts(pair.ahmed).put(other, C_ADDR, world.a)
    Contacts(pair.ahmed).remove(world.b)
    session, _ = session_with(down)
    sync_contact(pair.ahmed, other, session=session)
    assert StatusStore(pair.ahmed).fingerprints() == [other]


def test_a_status_file_of_an_earlier_version_is_split(pair: Pair, world: World) -> None:
    legacy = pair.ahmed.state / "sync_status.json"
    legacy.write_text(json.dumps({world.b: {"failures": 2, "posts_received": 9},
                                  "../bad": {"failures": 1}}))
    assert StatusStore(pair.ahmed).get(world.b).failures == 2
    assert not legacy.exists() and StatusStore(pair.ahmed).fingerprints() == [world.b]
    (pair.ahmed.state / "sync" / f"{world.b}.json").write_text("{damaged")
    assert StatusStore(pair.ahmed).get(world.b) == SyncStatus(world.b)


def test_unknown_contacts_are_refused(pair: Pair) -> None:
    from app.core.base.errors import NotFound

    with pytest.raises(NotFound):
        sync_all(pair.ahmed, only=[other_key()[0]])
    with pytest.raises(NotFound):
        sync_contact(pair.ahmed, other_key()[0])


def test_the_index_sees_synced_posts(pair: Pair) -> None:
    pair.post(NOW - 10)
    pair.sync()
    assert open_index(pair.ahmed).newest_time(pair.w.b) == NOW - 10


def paged_owner(pair: Pair, raws: list[bytes], *, scramble_first: bool = False
                ) -> tuple[Callable[[Call], Reply], list[int]]:
    """A well-behaved owner over ``raws`` (at positions 1, 2, ...) that pages by the
    request's position; with ``scramble_first`` its first page comes in reverse."""
    asked: list[int] = []

    def pages(req: exchange.FeedRequest) -> tuple[list[bytes], bool]:
        asked.append(req.after)
        rest = raws[req.after:]
        return rest[:req.limit], len(rest) > req.limit

    def positions(req: exchange.FeedRequest, n: int) -> list[int]:
        at = [req.after + 1 + i for i in range(n)]
        return at[::-1] if scramble_first and len(asked) == 1 else at

    return fake_owner(pair.basant, pair.w.b, pages, positions=positions), asked


def test_pages_arrive_while_the_previous_one_is_stored(tmp_path: Path, world: World) -> None:
    pair = make_pair(tmp_path, world, ahmed={"max_page_size": 2})
    raws = [build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 100 + i, "TEXT": str(i)})
            for i in range(7)]
    handler, asked = paged_owner(pair, raws)
    session, _ = session_with(handler)
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert st.last_error is None and st.posts_last_run == 7 and st.pages_last_run == 4
    assert asked == [0, 2, 4, 6]  # every request was for a page that was used


@pytest.mark.parametrize("full", [False, True])
def test_the_next_page_is_asked_while_this_one_is_stored(
        tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch, full: bool) -> None:
    """Following the cursor (a first sync) and fetching the runs a comparison found
    missing (a full sync): the request for the next page reaches the owner before the
    page in hand is stored; the last page waits for nothing."""
    pair = make_pair(tmp_path, world, ahmed={"max_page_size": 2})
    raws = [build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 100 + i, "TEXT": str(i)})
            for i in range(7)]
    handler, asked = paged_owner(pair, raws)
    arrived = threading.Condition()

    def owner(call: Call) -> Reply:
        reply = handler(call)
        with arrived:
            arrived.notify_all()
        return reply

    ahead: list[bool] = []
    check_batch = Ingestor.check_batch

    def storing(self: Ingestor, page: list[bytes], **kw: Any) -> Any:
        if page[-1] != raws[-1]:  # the next page (after this one's last position) is asked
            after = raws.index(page[-1]) + 1
            with arrived:
                ahead.append(arrived.wait_for(lambda: after in asked, timeout=1))
        return check_batch(self, page, **kw)

    monkeypatch.setattr(Ingestor, "check_batch", storing)
    st = sync_contact(pair.ahmed, world.b, session=session_with(owner)[0], full=full)
    assert st.last_error is None and pair.held() == {hashlib.sha1(r).hexdigest() for r in raws}
    assert ahead == [True, True, True]


@pytest.mark.parametrize("full", [False, True])
def test_a_stored_page_is_let_go_before_the_next_one_is_stored(
        tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch, full: bool) -> None:
    """The memory bound of a sync: while a page is stored, the previous page's stored
    result (every post parsed) and its response are no longer held."""
    pair = make_pair(tmp_path, world, ahmed={"max_page_size": 2})
    raws = [build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 100 + i, "TEXT": str(i)})
            for i in range(7)]
    held: list[list[bool]] = []
    previous: list[weakref.ref[Any]] = []
    check_batch = Ingestor.check_batch

    def checking(self: Ingestor, page: list[bytes], **kw: Any) -> Any:
        held.append([ref() is not None for ref in previous])
        return check_batch(self, page, **kw)

    def keeping(store: Any) -> Any:
        def storing(self: Ingestor, *args: Any, **kw: Any) -> Any:
            result = store(self, *args, **kw)
            if result is not None:
                previous[:] = [weakref.ref(result), weakref.ref(result.accepted[0].post)]
            return result
        return storing

    monkeypatch.setattr(Ingestor, "check_batch", checking)
    for name in ("store_checked", "store_deferred"):
        monkeypatch.setattr(Ingestor, name, keeping(getattr(Ingestor, name)))
    st = sync_contact(pair.ahmed, world.b, session=session_with(paged_owner(pair, raws)[0])[0],
                      full=full)
    assert st.last_error is None and len(pair.held()) == 7
    assert held == [[], [False, False], [False, False], [False, False]]


def test_a_page_whose_positions_do_not_increase_is_refused(tmp_path: Path,
                                                           world: World) -> None:
    pair = make_pair(tmp_path, world, ahmed={"max_page_size": 3})
    raws = [build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 100 + i, "TEXT": str(i)})
            for i in range(7)]
    handler, asked = paged_owner(pair, raws, scramble_first=True)
    session, _ = session_with(handler)
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert "positions do not increase" in (st.last_error or "") and pair.held() == set()


# the scheduler ----------------------------------------------------------------------------

def test_the_scheduler_registers_sync_and_gc(tmp_path: Path) -> None:
    from scheduler.worker import build

    dd = make_datadir(tmp_path / "n", sync_interval=123, gc_interval=4567)
    sched = build(dd)
    jobs = {job.id: job for job in sched.get_jobs()}
    assert {"sync", "gc"} <= set(jobs)
    assert jobs["sync"].trigger.interval.total_seconds() == 123
    assert jobs["gc"].trigger.interval.total_seconds() == 4567
    assert jobs["sync"].args == (dd,) or jobs["sync"].args == [dd]


def test_scheduled_jobs_never_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from scheduler.jobs import run_gc, run_sync

    dd = make_datadir(tmp_path / "n")
    run_sync(dd)  # no contacts: nothing to do
    (dd.state / "contacts.json").write_text("{broken")
    run_sync(dd)
    run_gc(dd)
    assert "scheduled sync failed" in caplog.text and "scheduled clean-up failed" in caplog.text


def test_an_owner_node_stale_about_another_device_still_serves(pair: Pair, world: World
                                                               ) -> None:
    """Basant's identity has a second node (the laptop, device L) that rotated its key and
    told Ahmed first; Basant's node still holds L at serial 1 and sends that in message 2.
    Ahmed keeps the newer certificate and takes the page (found by the tester of issue 8:
    the sync failed with "a key document that cannot be held" until the nodes met)."""
    seed, b = world.seeds[world.b], world.b
    mine = Identities(pair.basant).public_key(b).devices[0]
    laptop = [keys.DeviceCert("1111111111111111", n, noise.generate_keypair().public)
              for n in (1, 2)]
    Identities(pair.basant).update_pub(b, keys.certify(seed, [mine, laptop[0]]).to_bytes())
    current = keys.certify(seed, [mine, laptop[1]]).to_bytes()
    Identities(pair.ahmed).update_pub(b, current)
    sha = pair.post(NOW - 100)
    st = pair.sync()
    assert (st.last_error, pair.held()) == (None, {sha})
    assert Identities(pair.ahmed).pub_document(b) == current


def test_a_comparison_holds_one_summary_page_at_a_time(tmp_path: Path, world: World) -> None:
    """The posts a summary page lacks are fetched before the next summary page is asked
    for, and the cursor moves page by page: a follower never holds a whole long feed's
    summary (found by the tester of issue 14: an owner answering ``more`` to each of
    ``sync_max_pages`` (1,000) summaries of ``max_summary_entries`` (20,000) entries
    made the follower hold 20 million entries, gigabytes, before fetching anything)."""
    pair = make_pair(tmp_path, world, ahmed={"max_summary_entries": 2})
    raws = [build_post(world.seeds[world.b], {"CREATED_TIME": NOW - 100 + i,
                                              "TEXT": f"s{i}"}) for i in range(6)]
    Ingestor(pair.ahmed).ingest_many(raws[:1])  # holds one: the first sync compares

    def pages(req: exchange.FeedRequest) -> tuple[list[bytes], bool]:
        rest = raws[req.after:]
        return rest[:req.limit], len(rest) > req.limit

    seen: list[tuple[str, exchange.FeedRequest]] = []
    session, _ = session_with(fake_owner(pair.basant, world.b, pages, seen))
    st = sync_contact(pair.ahmed, world.b, session=session)
    assert st.last_error is None and pair.held() == {hashlib.sha1(r).hexdigest() for r in raws}
    assert [("S" if r.summary else "P", r.after) for _, r in seen] == [
        ("S", 0), ("P", 1), ("S", 2), ("P", 2), ("S", 4), ("P", 4)]
    [cursor] = st.cursors.values()
    assert cursor["after"] == 6
