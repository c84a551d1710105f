"""Three real nodes (Ahmed, Basant, Camal): each its own data directory, ports, gunicorn
admin and peer processes and scheduler, on 127.0.0.1. Everything is checked through the
admin APIs; nothing is mocked.

The module fixture ``people`` starts the nodes, makes one identity on each and has every
one follow the other two, so each test passes alone as well as in any order; a test that
changes shared state (a block) puts it back whatever happens.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.core.base.datadir import DataDir
from app.core.base.fsio import file_lock
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.posts import codec as posts
from tests.helpers.strangers import new_stranger

from .harness import Node

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PW = {"ahmed": "pw-ahmed-long", "basant": "pw-basant-long", "camal": "pw-camal-long"}


class Person:
    def __init__(self, node: Node, name: str) -> None:
        self.node, self.name = node, name
        r = node.admin("POST", "/identities", json={"password": PW[name]})
        assert r.status_code == 201, r.text
        self.fp: str = r.json()["fingerprint"]

    def api(self, method: str, path: str, status: int | tuple[int, ...] = 200,
            **kw: Any) -> Any:
        r = self.node.admin(method, path, **kw)
        expected = (status,) if isinstance(status, int) else status
        assert r.status_code in expected, (self.name, method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def post(self, **body: Any) -> str:
        out = self.api("POST", "/posts", 201,
                       json={"fingerprint": self.fp, "password": PW[self.name], **body})
        return str(out["sha1"])

    def follow(self, other: Person) -> None:
        self.api("PUT", f"/contacts/{other.fp}", (200, 201),
                 json={"address": other.node.peer_url, "identity": self.fp})

    def sync(self, other: Person | None = None) -> list[dict[str, Any]]:
        body = {"fingerprint": other.fp} if other else {}
        statuses = self.api("POST", "/sync", json=body)["statuses"]
        for st in statuses:
            assert st["last_error"] is None, (self.name, st)
        return statuses

    def has(self, sha: str) -> bool:
        r = self.node.admin("GET", f"/posts/{sha}")
        assert r.status_code in (200, 404), r.text
        return r.status_code == 200


def following_each_other(root: Path, settings: dict[str, Any]) -> Iterator[dict[str, Person]]:
    """Ahmed, Basant and Camal on three real nodes under ``root``, each following the
    others; stopped when the generator closes (for module fixtures)."""
    nodes = [Node(root / n, n, settings=settings) for n in PW]
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready()
        people = {n.name: Person(n, n.name) for n in nodes}
        for x in people.values():
            for y in people.values():
                if x is not y:
                    x.follow(y)
        yield people
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Person]]:
    yield from following_each_other(tmp_path_factory.mktemp("three"),
                                    {"sync_interval": 3, "max_page_size": 50})


def test_keys_exchanged_by_fingerprint(people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    for x in (a, b, c):
        for y in (a, b, c):
            if x is not y:
                x.follow(y)
    for x in (a, b, c):
        known = {i["fingerprint"] for i in x.api("GET", "/identities")["identities"]}
        assert known == {a.fp, b.fp, c.fp}
        for y in (a, b, c):
            doc = x.api("GET", f"/identities/{y.fp}")["public_key"]
            assert hashlib.sha256(keys.parse_pub(doc).sign).hexdigest() == y.fp


def test_public_posts_reach_everyone_within_one_scheduled_sync(
        people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    sha = b.post(text="hello from Basant")
    deadline = time.time() + 30  # sync_interval is 3 s; allow for back-off and a slow box
    while time.time() < deadline and not (a.has(sha) and c.has(sha)):
        time.sleep(0.5)
    assert a.has(sha) and c.has(sha)
    got = a.api("GET", f"/posts/{sha}")
    assert got["author"] == b.fp and got["attributes"]["TEXT"]["value"] == "hello from Basant"
    status = {s["fingerprint"]: s for s in a.api("GET", "/sync")["statuses"]}
    assert status[b.fp]["last_success"] is not None and status[b.fp]["posts_received"] >= 1


def test_comment_reaches_addressee_then_a_shared_group(people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    root = b.post(text="what do you think?")
    a.sync(b)
    comment = a.post(text="great", reply_to=root)
    b.sync(a)
    c.sync(a)
    assert b.has(comment)
    assert not c.has(comment)
    thread = b.api("GET", f"/posts/{root}/replies")["replies"]
    assert [r["post"]["sha1"] for r in thread] == [comment]
    a.api("PUT", "/groups/commenters")
    a.api("PUT", f"/groups/commenters/{c.fp}")
    a.api("PUT", f"/identities/{a.fp}/settings", json={"share_comments_with": "commenters"})
    c.sync(a)
    assert c.has(comment)


def test_messages_reach_exactly_their_addressees(people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    private = a.post(text="just for Basant", to=[b.fp])
    group = a.post(text="Basant and Camal", to=[b.fp, c.fp])
    b.sync(a)
    c.sync(a)
    assert b.has(private) and b.has(group)
    assert c.has(group) and not c.has(private)
    convs = {frozenset(x["participants"]) for x in b.api("GET", "/conversations")["conversations"]}
    assert frozenset([a.fp, b.fp]) in convs and frozenset([a.fp, b.fp, c.fp]) in convs


def test_profile_addressed_to_basant(people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    a.post(profile={"name": "Ahmed (for friends)", "phone": "+20 100 000"}, to=[b.fp])
    b.sync(a)
    c.sync(a)
    prof = b.api("GET", f"/profiles/{a.fp}")
    assert prof["attributes"]["PROFILENAME"]["value"] == "Ahmed (for friends)"
    c.api("GET", f"/profiles/{a.fp}", 404)
    assert [x["name"] for x in b.api("GET", "/contacts-book")["contacts"]] == [
        "Ahmed (for friends)"]


def test_reshare_verifies_at_ahmeds(people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    original = b.post(text="worth sharing")
    c.sync(b)
    reshare = c.post(text="look at this", reshare=original)
    a.sync(c)
    got = a.api("GET", f"/posts/{reshare}")
    inner = got["attributes"]["RESHARED_POST"]["post"]
    assert got["verified"] and inner["sha1"] == original and inner["author"] == b.fp


def test_blocking_camal_at_basant(people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    b.api("PUT", f"/groups/blocked/{c.fp}")
    try:
        from_camal = c.post(text="can Basant see me?")
        for_camal = b.post(text="not for Camal any more")
        b.api("POST", "/sync", json={"fingerprint": c.fp})
        c.sync(b)
        a.sync(b)
        assert not b.has(from_camal)
        assert not (b.node.root / "posts" / c.fp / from_camal).exists()
        assert not c.has(for_camal)
        assert a.has(for_camal)  # Ahmed still gets her posts
    finally:
        b.api("DELETE", f"/groups/blocked/{c.fp}", 204)


def test_a_backdated_post_reaches_followers(people: dict[str, Person]) -> None:
    """Issue 9, fault 1: Ahmed follows Basant and syncs; Basant publishes a post dated an
    hour ago, then an ordinary one; Ahmed's next sync brings both (the old cursor, the
    newest CREATED_TIME held minus sync_overlap, never asked for the first)."""
    a, b = people["ahmed"], people["basant"]
    b.post(text="before")
    a.sync(b)
    backdated = b.post(text="written an hour ago", created_time=int(time.time()) - 3600)
    normal = b.post(text="written now")
    a.sync(b)
    assert a.has(normal) and a.has(backdated)


class LyingKeyServer:
    """A peer that answers every key request with a valid key of somebody else."""

    def __init__(self) -> None:
        self.doc = new_stranger(b"\x07" * 32, b"\x08" * 32).document
        self.asked: list[str] = []

        @Request.application
        def app(request: Request) -> Response:
            self.asked.append(request.path)
            return Response(self.doc, mimetype="text/plain")

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_a_wrong_key_by_plain_get_is_refused_and_never_a_ban(people: dict[str, Person]) -> None:
    """Issue 8, attack 6: a wrong key over unauthenticated GET is not stored, not recorded as
    a lie, and the address is asked again next time."""
    a = people["ahmed"]
    liar = LyingKeyServer()
    try:
        wanted = "ab" * 32
        for _ in range(2):
            r = a.node.admin("PUT", f"/contacts/{wanted}",
                             json={"address": liar.url, "identity": a.fp})
            assert r.status_code == 502 and r.json()["status"] == "peer_error", r.text
        lying = a.api("GET", "/peers/lying")["lying_peers"]
        assert not any(p["address"] == liar.url for p in lying)
        assert a.node.admin("GET", f"/identities/{wanted}").status_code == 404
        wrong_fp = keys.parse_pub(liar.doc).fingerprint
        assert a.node.admin("GET", f"/identities/{wrong_fp}").status_code == 404
        assert liar.asked == [f"/identities/{wanted}"] * 2
    finally:
        liar.close()


def _bulk_posts(person: Person, count: int) -> set[str]:
    """``count`` posts by ``person`` made with its key and imported through the admin API."""
    ids = Identities(DataDir(person.node.root, environ={}))
    seed = ids.open_seed(person.fp, PW[person.name])
    base = int(time.time()) - 60  # newer than what the followers hold, not in the future
    shas = set()
    for i in range(count):
        raw = posts.build_post(seed, {"TEXT": f"bulk {i}", "CREATED_TIME": base + i // 20})
        out = person.api("POST", "/posts/import", 201, json={"post": raw.decode()})
        shas.add(out["sha1"])
    return shas


def test_killing_a_node_mid_sync_loses_nothing(people: dict[str, Person]) -> None:
    a, b = people["ahmed"], people["basant"]
    a.api("DELETE", f"/contacts/{b.fp}", (200, 204))  # no sync fetches Basant's posts ...
    with file_lock(DataDir(a.node.root, environ={}).locks / f"sync-{b.fp}.lock"):
        pass  # (... once a scheduled one still running ends) ...
    made = _bulk_posts(b, 1200)  # ... while they are made
    held = a.node.root / "posts" / b.fp

    def arrived() -> set[str]:
        return {p.name for p in held.iterdir()} & made if held.is_dir() else set()

    assert not arrived()
    a.follow(b)  # from now on the sync below (and the scheduler's) fetch them
    done = threading.Event()
    outcome: list[requests.Response | BaseException] = []

    def sync_in_background() -> None:
        try:
            outcome.append(a.node.admin("POST", "/sync", json={"fingerprint": b.fp},
                                        timeout=120))
        except BaseException as exc:  # recorded, and checked below
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=sync_in_background, daemon=True).start()
    deadline = time.time() + 60
    while time.time() < deadline and len(arrived()) <= 150:
        time.sleep(0.02)
    a.node.kill("admin", group=True)  # SIGKILL the admin gunicorn (master + worker)
    a.node.kill("scheduler", group=True)
    assert done.wait(30), "the sync request did not end when its admin process was killed"
    [ended] = outcome
    # the admin process died under the request (not before it): the connection drops
    assert isinstance(ended, requests.ConnectionError), repr(ended)
    assert "Connection aborted" in str(ended), repr(ended)
    on_disk = {p.name for p in held.iterdir() if not p.name.startswith(".")}
    assert 0 < len(on_disk & made) < len(made), "the kill did not land mid-sync"
    for sha in on_disk:  # only whole files: every one verifies by its name
        raw = (held / sha).read_bytes()
        assert hashlib.sha1(raw).hexdigest() == sha
    a.node.restart()
    a.sync(b)
    final = {p.name for p in held.iterdir() if not p.name.startswith(".")}
    assert made <= final
    listed: list[str] = []
    cursor = ""
    while True:  # the timeline lists every one of them exactly once
        page = a.api("GET", f"/posts?author={b.fp}&limit=50{cursor}")
        assert {p["author"] for p in page["posts"]} <= {b.fp}
        listed += [p["sha1"] for p in page["posts"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    repeated = {sha: n for sha, n in Counter(listed).items() if n > 1}
    assert not repeated, f"listed more than once: {repeated}"
    assert made <= set(listed)
