"""The visibility rule, proven (issue 9): random feeds served through real v2 exchanges.

Hypothesis draws an owner's feed (public posts, private and group messages, profiles for
everyone and for some, comments on public and on private posts, reshares, then edits and
deletions), the owner's comment-sharing group and setting, and blocked askers. Every
asker (three followers, a stranger, another node of the owner's own identity) pulls the
owner's whole feed after each of two rounds of writing, through the real exchange
(``exchange.build_request`` / the owner's real peer app / ``exchange.open_response``) and
the real ingest, into real data directories. Each must then hold exactly what
:func:`oracle` (written here from the table in ``docs/protocol.md``, "Who gets what",
not from the core's rule) says: nothing missing, nothing extra, nothing deleted.

``DIWAN_VISIBILITY_EXAMPLES`` sets the number of examples (default 20: ~20 s on 2 cores).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app import create_peer_app
from app.core.base.datadir import DataDir
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network.exchange import OwnKeys, build_request, open_response
from app.core.network.feeds import set_share_comments_group
from app.core.posts.authoring import Draft, compose, deletion_record
from app.core.posts.codec import Post, build_post, decode_post
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import Call, copy_node, flask_handler

# Shrinking a failure of this test takes minutes: off unless DIWAN_VISIBILITY_SHRINK=1.
settings.register_profile("diwan-visibility", max_examples=int(
    os.environ.get("DIWAN_VISIBILITY_EXAMPLES", "20")), deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate,
            *([Phase.shrink] if os.environ.get("DIWAN_VISIBILITY_SHRINK") else [])],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FOLLOWERS = ("a1", "a2", "a3")
ADDR = "http://10.9.0.1:8889"


@dataclass
class People:
    template: DataDir
    fp: dict[str, str]       # o (owner), a1-a3 (followers), s (a stranger), x (nobody's)
    seeds: dict[str, bytes]


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> People:
    dd = make_datadir(tmp_path_factory.mktemp("people"))
    ids = Identities(dd)
    fp = {name: ids.create(PASSWORD) for name in ("o", *FOLLOWERS, "s", "x")}
    return People(dd, fp, {n: ids.open_seed(f, PASSWORD) for n, f in fp.items()})


# --- what to write -------------------------------------------------------------------------

audiences = st.sets(st.sampled_from([*FOLLOWERS, "x"]), min_size=1, max_size=3)
writes = st.one_of(
    st.tuples(st.just("public")),
    st.tuples(st.just("message"), audiences),
    st.tuples(st.just("profile")),
    st.tuples(st.just("profile_for"), audiences),
    st.tuples(st.just("comment_on_own"), st.integers(0, 50)),   # on the owner's n-th post
    st.tuples(st.just("comment_on_theirs")),                    # on a1's public post
    st.tuples(st.just("comment_on_private")),                   # on a2's message to o
    st.tuples(st.just("reshare")),                              # of x's public post
)
changes = st.one_of(writes, st.tuples(st.just("edit"), st.integers(0, 50)),
                    st.tuples(st.just("delete"), st.integers(0, 50)))


@dataclass
class Plan:
    group: frozenset[str]
    sharing: bool
    blocked: frozenset[str]
    first: list[tuple[Any, ...]]
    second: list[tuple[Any, ...]]


plans = st.builds(Plan, st.frozensets(st.sampled_from(FOLLOWERS)), st.booleans(),
                  st.frozensets(st.sampled_from(FOLLOWERS), max_size=1),
                  st.lists(writes, min_size=1, max_size=7),
                  st.lists(changes, min_size=1, max_size=6))


# --- the owner's node ------------------------------------------------------------------------

@dataclass
class Owner:
    dd: DataDir
    p: People
    others: dict[str, Post] = field(default_factory=dict)  # a1's public post, a2's message
    n: int = 0

    @property
    def fp(self) -> str:
        return self.p.fp["o"]

    def store(self, attrs: dict[str, Any], who: str = "o") -> Post:
        raw = build_post(self.p.seeds[who], attrs)
        return Ingestor(self.dd).ingest(raw).post

    def write(self, draft: Draft) -> Post:
        self.n += 1
        attrs = compose(self.dd, self.fp, draft, now=int(time.time()) - 1000 + self.n)
        return self.store(attrs)

    def live(self) -> list[str]:
        """The owner's posts held now, not records, oldest written first."""
        folder = self.dd.posts / self.fp
        found = [decode_post(f.read_bytes(), max_bytes=10**7) for f in folder.iterdir()
                 if not f.name.startswith(".")] if folder.is_dir() else []
        return [q.sha1 for q in sorted(found, key=lambda q: (q.created, q.sha1))
                if q.kind != "deletion"]

    def apply(self, change: tuple[Any, ...]) -> None:
        kind, fps = change[0], self.p.fp
        live = self.live()
        if kind == "public":
            self.write(Draft(text=f"public {self.n}"))
        elif kind == "message":
            self.write(Draft(text=f"message {self.n}", to=[fps[w] for w in sorted(change[1])]))
        elif kind == "profile":
            self.write(Draft(profile={"name": f"O {self.n}"}))
        elif kind == "profile_for":
            self.write(Draft(profile={"name": f"O {self.n}"},
                             to=[fps[w] for w in sorted(change[1])]))
        elif kind == "comment_on_own" and live:
            self.write(Draft(text=f"comment {self.n}", reply_to=live[change[1] % len(live)]))
        elif kind == "comment_on_theirs":
            self.write(Draft(text=f"comment {self.n}", reply_to=self.others["a1"].sha1))
        elif kind == "comment_on_private":
            self.write(Draft(text=f"answer {self.n}", reply_to=self.others["a2"].sha1))
        elif kind == "reshare":
            self.write(Draft(text=f"look {self.n}", reshare=self.others["x"].sha1))
        elif kind == "edit" and live:
            self.write(Draft(text=f"edited {self.n}", edit=live[change[1] % len(live)]))
        elif kind == "delete" and live:
            self.n += 1
            self.store(deletion_record(self.dd, self.fp, live[change[1] % len(live)],
                                       now=int(time.time()) - 1000 + self.n))

    def held(self) -> dict[str, Post]:
        """The owner's files now (none yet if every change so far had nothing to act on)."""
        folder = self.dd.posts / self.fp
        return {f.name: decode_post(f.read_bytes(), max_bytes=10**7)
                for f in folder.iterdir() if not f.name.startswith(".")} \
            if folder.is_dir() else {}


def make_owner(root: Path, p: People, plan: Plan) -> Owner:
    dd = copy_node(root / "o", p.template, [p.fp["o"]])
    ids = Identities(dd)
    for name in (*FOLLOWERS, "x"):  # the owner knows its followers (pinned askers)
        ids.import_pub(p.template.identities.joinpath(f"{p.fp[name]}.pub").read_bytes())
    owner = Owner(dd, p)
    t = int(time.time()) - 5000
    owner.others["a1"] = owner.store({"CREATED_TIME": t, "TEXT": "a1 in public"}, "a1")
    owner.others["a2"] = owner.store({"CREATED_TIME": t, "TEXT": "a2 to o",
                                      "TO_FINGERPRINT": p.fp["o"]}, "a2")
    owner.others["x"] = owner.store({"CREATED_TIME": t, "TEXT": "x in public"}, "x")
    if plan.group:
        ids.create_group("friends")
        for name in sorted(plan.group):
            ids.add_member("friends", p.fp[name])
        if plan.sharing:
            set_share_comments_group(dd, p.fp["o"], "friends")
    for name in plan.blocked:
        ids.block(p.fp[name])
    return owner


# --- askers -------------------------------------------------------------------------------

@dataclass
class Asker:
    name: str   # a follower's name, "s" (a stranger) or "o" (another node of the owner)
    dd: DataDir
    fp: str

    def pull(self, owner: Owner, handler: Any) -> None:
        """The owner's whole feed, page by page, through the real exchange and ingest."""
        ids = Identities(self.dd)
        me = OwnKeys(self.fp, ids.pub_document(self.fp), ids.transport_secret(self.fp))
        transport = keys.parse_pub(Identities(owner.dd).pub_document(owner.fp)).transport_public
        epoch: int | None = None
        after = 0
        while True:
            body, pending = build_request(asker=me, owner_fp=owner.fp, owner_transport=transport,
                                          epoch=epoch, after=after, limit=5,
                                          now=int(time.time()))
            status, data, _ = handler(Call("POST", f"{ADDR}/feeds/{owner.fp}", body,
                                           {"Content-Type": "application/octet-stream"}))
            assert status == 200, data
            response = open_response(data, pending, max_bytes=10**8)
            raws = list(response.posts)
            batch = Ingestor(self.dd).ingest_many(raws, author=owner.fp)
            assert not batch.rejected, batch.rejected
            if not response.more or not raws:
                return
            epoch, after = response.epoch, response.positions[-1]

    def holds(self, owner_fp: str) -> set[str]:
        folder = self.dd.posts / owner_fp
        return {f.name for f in folder.iterdir() if not f.name.startswith(".")} \
            if folder.is_dir() else set()


def make_askers(root: Path, p: People) -> list[Asker]:
    out = []
    for name in (*FOLLOWERS, "s", "o"):
        dd = copy_node(root / f"asker-{name}", p.template, [p.fp[name]])
        for other in ("o", "x"):  # authors it may need to verify (reshares)
            if other != name:
                Identities(dd).import_pub(
                    p.template.identities.joinpath(f"{p.fp[other]}.pub").read_bytes())
        out.append(Asker(name, dd, p.fp[name]))
    return out


# --- the oracle: the table of docs/protocol.md, "Who gets what" --------------------------------

def _types(post: Post, wanted: str) -> list[Any]:
    return [v for k, v in post.attributes.items() if k.rpartition("_")[2] == wanted]


def visible(post: Post, asker: str, fps: dict[str, str], plan: Plan,
            stored: dict[str, Post]) -> bool:
    """May ``asker`` receive ``post`` from the owner's node holding ``stored`` now?"""
    if asker == "o":
        return True                                  # another node of the same identity
    if asker in plan.blocked:
        return False                                 # a blocked asker: nothing
    addressed = set(_types(post, "FINGERPRINT"))
    if not addressed:
        return True                                  # public: everyone, strangers too
    if asker == "s":
        return False                                 # a stranger: public only
    if fps[asker] in addressed:
        return True                                  # an addressee
    in_group = plan.sharing and asker in plan.group
    if not in_group:
        return False
    if _types(post, "DELETES"):                      # a record naming the comment's parents
        return bool(_types(post, "PARENTSHA"))
    parents = _types(post, "POSTSHA")                # a comment: every parent held, public
    return bool(parents) and all(
        s in stored and not _types(stored[s], "FINGERPRINT") for s in parents)


def oracle(held: set[str], asker: str, p: People, plan: Plan, owner: Owner) -> set[str]:
    """What ``asker`` holds after one more pull, from what it ``held`` before."""
    mine = owner.held()
    stored = {**mine, **{q.sha1: q for q in owner.others.values()}}
    got = held | {s for s, q in mine.items() if visible(q, asker, p.fp, plan, stored)}
    deleted = {t for s in got if s in mine for t in _types(mine[s], "DELETES")}
    return got - deleted


# --- the property ----------------------------------------------------------------------------

def _rounds(tmp: Path, p: People, plan: Plan) -> Iterator[tuple[Owner, list[Asker]]]:
    owner = make_owner(tmp, p, plan)
    askers = make_askers(tmp, p)
    for writes_ in (plan.first, plan.second):
        for change in writes_:
            owner.apply(change)
        yield owner, askers


@settings(settings.get_profile("diwan-visibility"))
@given(plan=plans)
def test_every_asker_holds_exactly_what_the_table_says(
        people: People, tmp_path_factory: pytest.TempPathFactory, plan: Plan) -> None:
    tmp = tmp_path_factory.mktemp("example")
    expected: dict[str, set[str]] = {}
    deleted: set[str] = set()
    for owner, askers in _rounds(tmp, people, plan):
        handler = flask_handler(create_peer_app({"data_dir": str(owner.dd.root)}))
        for asker in askers:
            expected[asker.name] = oracle(expected.get(asker.name, set()), asker.name,
                                          people, plan, owner)
            asker.pull(owner, handler)
        deleted |= {t for q in owner.held().values() for t in _types(q, "DELETES")}
        for asker in askers:
            holds = asker.holds(owner.fp)
            assert holds - expected[asker.name] == set(), f"{asker.name} holds extra posts"
            assert expected[asker.name] - holds == set(), f"{asker.name} misses posts"
            assert not holds & deleted, f"{asker.name} holds a deleted post"
