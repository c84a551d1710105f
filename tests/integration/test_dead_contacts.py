"""Issue 15, fault 4 against real processes: dead contacts never starve a live one.

A real follower node (gunicorn admin and peer, the real scheduler) follows
200 contacts whose address is a loopback socket that never answers, and one
live contact: another real node with posts. The dead contacts failed before
(their back-off is over), as they would have on a node that has been running;
they and their keys are written into the follower's data directory before it
starts, so no key is fetched. The scheduler's first round must bring the live
contact's posts within 10 s of the round's start and end within its deadline
(``sync_round_time``, plus the timeout of contacts already started). Everything
is read from the follower's real files and admin API.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from app.core.base.datadir import DataDir
from app.core.base.statefile import StateFile
from app.core.identity.identities import Identities
from tests.helpers.dead_contacts import never_answering
from tests.helpers.strangers import new_stranger

from .conftest import NodeFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PW = "pw-dead-contacts-long"
DEAD, POSTS = 200, 3
TIMEOUT, ROUND, INTERVAL = 2, 6, 60  # seconds; the round's deadline is min(ROUND, INTERVAL)
SUMMARY = re.compile(r"sync: (\d+) contacts synced, (\d+) failed, (\d+) skipped, (\d+) new posts")


def _follower_dir(root: Path, owner_doc: bytes, owner_address: str, dead_address: str
                  ) -> tuple[str, list[str]]:
    """The follower's data directory: its identity, the owner's and 200 strangers' keys,
    the contacts, and the dead ones' failed last attempts. Returns (owner fp, dead fps)."""
    dd = DataDir(root, environ={})
    dd.initialise()
    ids = Identities(dd)
    me = ids.create(PW)
    owner = ids.import_pub(owner_doc)
    dead = [ids.import_pub(new_stranger().document) for _ in range(DEAD)]
    now = time.time()
    with StateFile(dd, "contacts").update() as data:
        data[owner] = {"addresses": [owner_address], "identity": me, "added": now}
        for fp in dead:
            data[fp] = {"addresses": [dead_address], "identity": me, "added": now}
    with StateFile(dd, "sync_status").update() as data:
        for i, fp in enumerate(dead):  # failed an hour ago; the back-off is over
            data[fp] = {"last_attempt": now - 3600, "failures": 1, "last_error": "timed out",
                        "next_attempt": now - 60 - i, "address": dead_address, "identity": me}
    return owner, dead


def _statuses(root: Path) -> dict[str, dict[str, object]]:
    out = {}
    for path in (root / "state" / "sync").glob("*.json"):
        try:
            out[path.stem] = dict(json.loads(path.read_text("utf-8")))
        except (FileNotFoundError, ValueError):
            continue
    return out


def test_a_live_contact_is_synced_first_and_the_round_keeps_its_deadline(
        tmp_path: Path, make_node: NodeFactory) -> None:
    owner_node = make_node("owner")
    owner_fp = owner_node.admin("POST", "/identities", json={"password": PW}).json()["fingerprint"]
    shas = []
    for i in range(POSTS):
        r = owner_node.admin("POST", "/posts", json={"fingerprint": owner_fp, "password": PW,
                                                     "text": f"alive {i}"})
        assert r.status_code == 201, r.text
        shas.append(r.json()["sha1"])
    owner_doc = owner_node.peer("GET", f"/identities/{owner_fp}").content

    with never_answering() as dead_address:
        root = tmp_path / "follower"
        owner, dead = _follower_dir(root, owner_doc, owner_node.peer_url, dead_address)
        assert owner == owner_fp
        follower = make_node("follower", settings={
            "sync_interval": INTERVAL, "sync_timeout": TIMEOUT, "sync_round_time": ROUND,
            "sync_parallel": 4, "sync_parallel_failing": 4})
        started = time.time()
        ended = summary = None
        limit = time.monotonic() + 60  # the first round starts ~5 s after the scheduler
        while time.monotonic() < limit and summary is None:
            summary = SUMMARY.search(follower.log("scheduler"))
            ended = time.time()
            time.sleep(0.1)

    statuses = _statuses(root)
    this_round = [float(st["last_attempt"]) for st in statuses.values()
                  if isinstance(st.get("last_attempt"), float)
                  and float(st["last_attempt"]) >= started]
    assert this_round, statuses
    round_start = min(this_round)
    live = statuses.get(owner_fp, {})
    assert live.get("last_success") is not None, ("the live contact was not synced", live)
    assert live["last_error"] is None and live["failures"] == 0, live
    said = {st["fingerprint"]: st for st in follower.admin("GET", "/sync").json()["statuses"]}
    assert said[owner_fp]["state"] == "ok", said[owner_fp]
    assert live["posts_received"] == POSTS, live
    assert float(live["last_success"]) - round_start < 10, (live, round_start)
    for sha in shas:
        got = follower.admin("GET", f"/posts/{sha}")
        assert got.status_code == 200 and got.json()["author"] == owner_fp, got.text

    assert summary is not None, ("the round did not end", follower.log("scheduler")[-3000:])
    synced, failed, skipped, received = (int(x) for x in summary.groups())
    assert synced + skipped == DEAD + 1 and received == POSTS, summary.group(0)
    assert failed == synced - 1                       # every dead contact tried failed
    assert skipped > DEAD // 2, summary.group(0)      # the round did not wait for the rest
    tried = [fp for fp in dead if float(statuses[fp]["last_attempt"]) >= started]
    assert len(tried) == failed and all(statuses[fp]["failures"] == 2 for fp in tried)
    assert all(statuses[fp]["failures"] == 1 for fp in dead if fp not in tried)
    assert ended is not None
    print(f"round start {round_start - started:.1f} s after ready; live synced "
          f"{float(live['last_success']) - round_start:.2f} s into the round; round "
          f"ended by {ended - round_start:.1f} s; {summary.group(0)}")
    # within its deadline; a contact started just before it finishes its own timeouts
    assert ended - round_start < ROUND + 2 * TIMEOUT + 5, (ended - round_start, summary.group(0))
