"""Issue 15, fault 5 against real processes: a scheduler stopped past its due syncs.

A real follower node syncs every ``INTERVAL`` seconds from a counting peer:
the real peer app of another node's data directory, served on loopback, that
notes the time of every feed request it answers. Right after a sync, the
follower's real scheduler process is stopped with SIGSTOP (as a suspend
would) for a little more than two intervals, then resumed with SIGCONT.
Exactly one sync must run promptly on resume (the two missed runs become
one: no burst, and not dropped as "missed"), and the schedule goes on.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from app import create_peer_app
from app.core.base.datadir import DataDir
from app.core.base.statefile import StateFile
from app.core.identity.identities import Identities
from scheduler.jobs import FIRST_SYNC_DELAY

from .conftest import NodeFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PW = "pw-wakeup-long-enough"
INTERVAL = 6         # seconds between scheduled syncs
MISSED_BY = 1.5      # the resume comes this long after the second missed run was due
PROMPT = 2.5         # seconds after SIGCONT by which the catch-up sync must have asked
LONG_INTERVAL = 600  # the default: a dropped run would mean no sync for minutes
LATE_BY = 62         # seconds past the due time the long stop ends (the old grace was 60 s)
QUIET = 4            # seconds after the catch-up in which no second sync may come
# Without a catch-up the next sync comes at the next due time, INTERVAL - MISSED_BY
# (4.5 s) after the resume; missed runs run one by one (a burst) would come back
# to back, well under INTERVAL / 4 apart.


class CountingPeer:
    """The real peer app of ``root``, served on 127.0.0.1, noting each feed request's time."""

    def __init__(self, root: Path) -> None:
        app = create_peer_app({"data_dir": str(root)})
        self.feeds: list[float] = []

        def counting(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].startswith("/feeds/"):
                self.feeds.append(time.time())
            return app(environ, start)

        self.server = make_server("127.0.0.1", 0, counting, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _follower(root: Path, owner: tuple[CountingPeer, str, bytes]) -> None:
    """The follower's data directory: an own identity following the counting peer's owner."""
    peer, owner_fp, owner_doc = owner
    dd = DataDir(root, environ={})
    dd.initialise()
    ids = Identities(dd)
    me = ids.create(PW)
    ids.import_pub(owner_doc)
    with StateFile(dd, "contacts").update() as data:
        data[owner_fp] = {"addresses": [peer.url], "identity": me, "added": time.time()}


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[CountingPeer, str, bytes]]:
    dd = DataDir(tmp_path / "owner", environ={})
    dd.initialise()
    ids = Identities(dd)
    fp = ids.create(PW)
    peer = CountingPeer(dd.root)
    try:
        yield peer, fp, ids.pub_document(fp)
    finally:
        peer.close()


def _last_success(root: Path, fp: str) -> float:
    try:
        status = json.loads((root / "state" / "sync_status.json").read_text("utf-8"))[fp]
    except (FileNotFoundError, ValueError, KeyError):
        return 0.0
    return float(status.get("last_success") or 0.0)


def _wait(what: Callable[[], bool], seconds: float) -> bool:
    limit = time.monotonic() + seconds
    while time.monotonic() < limit:
        if what():
            return True
        time.sleep(0.05)
    return what()


def test_one_sync_runs_promptly_after_the_scheduler_was_stopped(
        tmp_path: Path, make_node: NodeFactory, owner: tuple[CountingPeer, str, bytes]) -> None:
    peer, owner_fp, _ = owner
    root = tmp_path / "follower"
    _follower(root, owner)
    node = make_node("follower", settings={"sync_interval": INTERVAL})

    # a first scheduled sync (about 5 s after the scheduler started), finished
    assert _wait(lambda: bool(peer.feeds), 30), node.log("scheduler")[-2000:]
    first = peer.feeds[0]
    assert _wait(lambda: _last_success(root, owner_fp) >= first - 1, 10), node.log("scheduler")
    pid = node.main_pid("scheduler")
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped = len(peer.feeds)
        time.sleep(max(0.0, first + 2 * INTERVAL + MISSED_BY - time.time()))
        assert len(peer.feeds) == stopped          # nothing ran while it was stopped
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.time()
    assert _wait(lambda: len(peer.feeds) >= stopped + 2, INTERVAL + 5), \
        (peer.feeds, resumed, node.log("scheduler")[-2000:])
    after = [t - resumed for t in peer.feeds[stopped:]]
    assert after[0] < PROMPT, after                               # promptly: not skipped
    assert len([t for t in after if t < PROMPT]) == 1, after      # exactly one
    gaps = [b - a for a, b in zip(after, after[1:], strict=False)]
    assert all(gap > INTERVAL / 4 for gap in gaps), after         # no burst
    assert after[1] < after[0] + INTERVAL + 1.5, after            # and the schedule goes on
    assert node.alive("scheduler")
    print(f"feed requests after SIGCONT at {[round(t, 2) for t in after]} s")


def test_a_sync_missed_by_more_than_a_minute_runs_on_resume(
        tmp_path: Path, make_node: NodeFactory, owner: tuple[CountingPeer, str, bytes]) -> None:
    """The issue's case: the due sync was missed by more than a minute (the old scheduler
    dropped a run late by over 60 s as "missed" and waited a full interval). The scheduler
    is stopped before its first sync (due FIRST_SYNC_DELAY s after it started) and resumed
    a minute after that; with a long interval, a dropped run would mean no sync for minutes."""
    peer, _, _ = owner
    root = tmp_path / "follower"
    _follower(root, owner)
    node = make_node("follower", start=False, settings={"sync_interval": LONG_INTERVAL})
    node.start(wait=False)
    alive = root / "state" / "scheduler.alive"  # its first heartbeat, as it starts
    assert _wait(lambda: alive.exists(), 30), node.log("scheduler")
    pid = node.main_pid("scheduler")
    os.kill(pid, signal.SIGSTOP)
    try:
        started = alive.stat().st_mtime
        assert not peer.feeds, "the first sync ran before the scheduler could be stopped"
        node.wait_ready()
        time.sleep(max(0.0, started + FIRST_SYNC_DELAY + LATE_BY - time.time()))
        assert not peer.feeds
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.time()
    _wait(lambda: len(peer.feeds) >= 2, QUIET)  # a second one would be a burst
    after = [t - resumed for t in peer.feeds]
    assert after and after[0] < PROMPT, (after, node.log("scheduler")[-2000:])
    assert len(after) == 1, after
    assert node.alive("scheduler")
    print(f"feed requests after SIGCONT at {[round(t, 2) for t in after]} s")
