"""Syncing between in-process nodes over real HTTP on 127.0.0.1, driven through the admin API.

Basant's real peer app is served by werkzeug on an ephemeral loopback port;
Ahmed and Camal follow her through their admin APIs (``PUT /contacts``, which
fetches her key by fingerprint) and pull with ``POST /sync``. What arrives is
checked as files on disk.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from live_nodes import copy_identities, serving

from app import create_peer_app
from app.cli import main
from app.core.base.datadir import DataDir
from app.core.identity.identities import Identities
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.helpers.clients import AdminClient, assert_error, make_admin_client
from tests.helpers.datadirs import PASSWORD, make_datadir, snapshot
from tests.helpers.strangers import new_stranger

NOW = int(time.time())


@dataclass
class People:
    template: DataDir
    ahmed: str
    basant: str
    camal: str
    seed: bytes  # Basant's


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> People:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    ids = Identities(dd)
    a, b, c = (ids.create(PASSWORD) for _ in range(3))
    return People(dd, a, b, c, ids.open_seed(b, PASSWORD))


@dataclass
class Net:
    p: People
    basant: DataDir
    address: str
    ahmed: AdminClient
    camal: AdminClient
    texts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def post(self, created: int, **attrs: Any) -> str:
        self.texts += 1
        raw = build_post(self.p.seed, {"CREATED_TIME": created, "TEXT": f"post {self.texts}",
                                       **attrs})
        return Ingestor(self.basant).ingest(raw).sha1

    def held(self, node: AdminClient) -> set[str]:
        folder = node.dd.posts / self.p.basant
        return {f.name for f in folder.iterdir()} if folder.is_dir() else set()

    def follow(self, node: AdminClient, me: str, address: str | None = None) -> None:
        r = node.put(f"/contacts/{self.p.basant}",
                     json={"address": address or self.address, "identity": me,
                           "replace": True})  # tests move Basant's address on purpose
        assert r.status_code == 200, r.get_json()

    def sync(self, node: AdminClient, **body: Any) -> dict[str, Any]:
        r = node.post("/sync", json=body)
        assert r.status_code == 200, r.get_json()
        [status] = r.get_json()["statuses"]
        return status  # type: ignore[no-any-return]


@pytest.fixture
def net(tmp_path: Path, people: People) -> Iterator[Net]:
    p = people
    basant_root = copy_identities(p.template, tmp_path / "basant", [p.basant])
    basant = make_datadir(basant_root)
    for follower in (p.ahmed, p.camal):  # Basant holds her followers' keys: no strangers
        Identities(basant).import_pub(p.template.identities.joinpath(f"{follower}.pub")
                                      .read_bytes())
    ahmed = make_admin_client(copy_identities(p.template, tmp_path / "ahmed", [p.ahmed]))
    camal = make_admin_client(copy_identities(p.template, tmp_path / "camal", [p.camal]))
    with serving(create_peer_app({"data_dir": str(basant_root)})) as address:
        n = Net(p, basant, address, ahmed, camal)
        n.follow(ahmed, p.ahmed)
        n.follow(camal, p.camal)
        yield n


def test_posts_reach_exactly_their_addressees(net: Net, people: People) -> None:
    public = {net.post(NOW - 3000 + i) for i in range(3)}
    to_ahmed = net.post(NOW - 2000, TO_FINGERPRINT=people.ahmed)
    to_camal = net.post(NOW - 1990, TO_FINGERPRINT=people.camal)
    to_both = net.post(NOW - 1980, A_FINGERPRINT=people.ahmed, B_FINGERPRINT=people.camal)
    a = net.sync(net.ahmed)
    c = net.sync(net.camal)
    assert net.held(net.ahmed) == public | {to_ahmed, to_both}
    assert net.held(net.camal) == public | {to_camal, to_both}
    assert (a["posts_last_run"], a["state"], a["last_error"]) == (5, "ok", None)
    assert c["posts_last_run"] == 5
    for node, sha in ((net.ahmed, to_ahmed), (net.camal, to_camal)):
        assert (node.dd.posts / people.basant / sha).read_bytes() == (
            net.basant.posts / people.basant / sha).read_bytes()


def test_a_second_sync_is_a_no_op(net: Net) -> None:
    net.post(NOW - 500)
    net.sync(net.ahmed)
    before = snapshot(net.ahmed.dd.root, "posts")
    again = net.sync(net.ahmed)
    assert (again["posts_last_run"], again["posts_received"]) == (0, 1)
    assert snapshot(net.ahmed.dd.root, "posts") == before


def test_a_post_dated_inside_the_overlap_is_still_fetched(net: Net) -> None:
    net.post(NOW - 1000)
    net.sync(net.ahmed)
    late = net.post(NOW - 1000 - 60)  # written after the sync, dated before the newest post
    assert net.sync(net.ahmed)["posts_last_run"] == 1
    assert late in net.held(net.ahmed)


def test_status_and_request_validation(net: Net, people: People) -> None:
    status = net.ahmed.get("/sync").get_json()["statuses"]
    assert [s["fingerprint"] for s in status] == [people.basant]
    assert status[0]["state"] == "never" and status[0]["address"] == net.address
    r = net.ahmed.post("/sync")  # no body: every contact
    assert r.status_code == 200 and r.get_json()["statuses"][0]["state"] == "ok"
    assert net.sync(net.ahmed, fingerprint=people.basant)["last_error"] is None
    assert_error(net.ahmed.post("/sync", json={"fingerprint": "0" * 64}), 404, "fingerprint")
    assert_error(net.ahmed.post("/sync", json={"fingerprint": "zz"}), 400, "fingerprint")
    assert_error(net.ahmed.post("/sync", json={"full": "maybe"}), 400, "full")
    shown = net.ahmed.get(f"/contacts/{people.basant}").get_json()["sync"]
    assert shown["state"] == "ok" and shown["last_success"] is not None


def test_a_blocked_contact_shows_as_blocked_and_is_not_polled(net: Net, people: People
                                                             ) -> None:
    """Issue 9: it read "ok" in GET /sync (and was polled); now "blocked" everywhere."""
    net.post(NOW - 500)
    assert net.sync(net.ahmed)["state"] == "ok"
    assert net.ahmed.put(f"/groups/blocked/{people.basant}").status_code in (200, 201, 204)
    late = net.post(NOW - 400)
    [status] = net.ahmed.get("/sync").get_json()["statuses"]
    assert status["state"] == "blocked"
    assert net.ahmed.get(f"/contacts/{people.basant}").get_json()["sync"]["state"] == "blocked"
    from scheduler.jobs import run_sync

    run_sync(net.ahmed.dd)   # the scheduler's round
    assert late not in net.held(net.ahmed)
    assert net.ahmed.get("/sync").get_json()["statuses"][0]["last_attempt"] == \
        status["last_attempt"]  # not even tried


def test_a_new_contact_is_synced_in_the_background_at_once(net: Net, people: People) -> None:
    """Issue 9: a new contact waited up to sync_interval (10 min) for its first sync. Now
    PUT /contacts returns at once and a scheduler job that runs every sync_request_poll
    (2) seconds, not the periodic sync, syncs it."""
    from scheduler.worker import build

    sha = net.post(NOW - 500)
    fresh = make_admin_client(copy_identities(people.template, net.basant.root.parent / "dalia",
                                              [people.ahmed]))
    sched = build(fresh.dd)  # the running scheduler's jobs
    prompt = [job for job in sched.get_jobs() if job.id not in ("sync", "gc", "heartbeat")
              and job.trigger.interval.total_seconds() <= 2]
    net.follow(fresh, people.ahmed)
    assert sha not in net.held(fresh)   # the call did not wait for the sync
    for job in prompt:
        job.func(*job.args)
    assert sha in net.held(fresh)
    status = fresh.get("/sync").get_json()["statuses"][0]
    assert status["state"] == "ok" and status["posts_received"] == 1
    again = net.post(NOW - 400)
    net.follow(fresh, people.ahmed)     # unchanged: nothing asked for
    for job in prompt:
        job.func(*job.args)
    assert again not in net.held(fresh)


def test_an_unreachable_contact_is_recorded_and_backs_off(net: Net, people: People) -> None:
    with serving(create_peer_app({"data_dir": str(net.basant.root)})) as gone:
        net.follow(net.ahmed, people.ahmed, gone)
    st = net.sync(net.ahmed)
    assert st["state"] == "failing" and st["failures"] == 1
    assert "could not be reached" in st["last_error"] and st["next_attempt"] > time.time()
    net.follow(net.ahmed, people.ahmed)  # back to the live address: a forced sync recovers
    assert net.sync(net.ahmed)["failures"] == 0


def forging_path(honest: Any, wrong: bytes, asked: list[str]) -> Any:
    """Basant's node behind an on-path forger who answers the first key lookup with ``wrong``."""
    def app(environ: dict[str, Any], start: Any) -> Any:
        path = environ["PATH_INFO"]
        asked.append(path)
        if path.startswith("/identities/") and sum(p.startswith("/identities/")
                                                   for p in asked) == 1:
            start("200 OK", [("Content-Type", "text/plain"),
                             ("Content-Length", str(len(wrong)))])
            return [wrong]
        return honest(environ, start)
    return app


@pytest.mark.parametrize("lookup", ["reshared_author", "owner_key_missing"])
def test_one_forged_plain_http_key_answer_does_not_stop_sync(
        net: Net, people: People, lookup: str) -> None:
    """Attack 6: one forged answer to an unauthenticated key lookup (a reshared author's key,
    or the contact's own key) is an ordinary error; the next sync works; nobody is banned."""
    dalia = new_stranger()
    Identities(net.basant).import_pub(dalia.document)
    inner = build_post(dalia.seed, {"CREATED_TIME": NOW - 100, "TEXT": "Dalia's"})
    net.post(NOW - 50, SHARED_POST=inner.decode())
    plain = net.post(NOW - 40)
    forger = new_stranger()
    wrong = forger.document
    asked: list[str] = []
    honest = create_peer_app({"data_dir": str(net.basant.root)})
    with serving(forging_path(honest, wrong, asked)) as address:
        net.follow(net.ahmed, people.ahmed, address)  # her key is held: nothing asked
        if lookup == "owner_key_missing":
            net.ahmed.identities.pub_path(people.basant).unlink()
        first = net.sync(net.ahmed)
        if lookup == "owner_key_missing":  # the run needs the key: it fails, saying why
            assert first["state"] == "failing" and "with the key of" in first["last_error"]
            assert "asked again next time" in first["last_error"]
        later = net.post(NOW - 30)
        second = net.sync(net.ahmed)
    assert second["last_error"] is None and second["state"] == "ok"
    assert {plain, later} <= net.held(net.ahmed)
    assert net.ahmed.get("/peers/lying").get_json()["lying_peers"] == []
    assert not net.ahmed.identities.exists(forger.fp)
    assert f"/identities/{dalia.fp}" not in asked  # others' keys: not by plain GET


# the command line drives the same core -------------------------------------------------------

def diwan(node: AdminClient, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(node.dd.root), *args])


def test_cli_contacts_sync_gc_and_lying_peers(net: Net, people: People) -> None:
    sha = net.post(NOW - 10)
    listed = diwan(net.ahmed, "contact", "list")
    assert listed.exit_code == 0 and people.basant[:16] in listed.output
    shown = json.loads(diwan(net.ahmed, "--json", "contact", "show", people.basant).output)
    assert shown["address"] == net.address and shown["sync"]["state"] == "never"

    synced = diwan(net.ahmed, "sync")
    assert synced.exit_code == 0, synced.output
    assert "syncing" in synced.stderr and people.basant[:16] in synced.stdout
    assert net.held(net.ahmed) == {sha}
    as_json = json.loads(diwan(net.ahmed, "--json", "sync", people.basant).stdout)
    assert as_json["statuses"][0]["posts_last_run"] == 0
    failed = diwan(net.ahmed, "sync", "0" * 64)
    assert failed.exit_code == 3 and "not a contact" in failed.stderr

    stale = net.ahmed.identities.import_pub(new_stranger().document)
    os.utime(net.ahmed.identities.pub_path(stale), (0, 0))
    dry = json.loads(diwan(net.ahmed, "--json", "gc", "--dry-run").stdout)
    assert dry["dry_run"] is True and dry["fingerprints"] == [stale]
    assert "no stored post" in dry["reasons"][stale]  # each key with why it may go
    assert net.ahmed.identities.exists(stale)
    assert f"deleted {stale}.pub" in diwan(net.ahmed, "gc").stdout
    assert not net.ahmed.identities.exists(stale) and net.ahmed.identities.exists(people.basant)

    assert "no lying peers" in diwan(net.ahmed, "lying-peers").stdout


def test_cli_contact_add_and_remove(net: Net, people: People) -> None:
    removed = diwan(net.camal, "contact", "remove", people.basant)
    assert removed.exit_code == 0 and json.loads(
        diwan(net.camal, "--json", "contact", "list").stdout) == {"contacts": []}
    added = diwan(net.camal, "contact", "add", people.basant, net.address)
    assert added.exit_code == 0 and "added contact" in added.stdout
    bad = diwan(net.camal, "contact", "add", people.basant, "ftp://x")
    assert bad.exit_code == 2 and "http://" in bad.stderr
