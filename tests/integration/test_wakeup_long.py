"""Issue 15, fault 5 against real processes, the issue's own case: a due sync missed by
more than a minute.

The old scheduler dropped a run late by over 60 s as "missed" and waited a full
interval (up to 9 minutes without a sync after waking, with the defaults). The
follower's real scheduler is stopped with SIGSTOP before its first sync and
resumed with SIGCONT a minute after that sync was due; exactly one sync must
run promptly, observed by a counting peer (the owner's real peer app). This
test takes over a minute by nature: the old grace was 60 s.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.jobs import FIRST_SYNC_DELAY
from tests.helpers.counting_peer import CountingPeer, counting_owner, follower_dir, wait_for

from .conftest import NodeFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LONG_INTERVAL = 600  # the default: a dropped run would mean no sync for minutes
LATE_BY = 62         # seconds past the due time the stop ends (the old grace was 60 s)
PROMPT = 2.5         # seconds after SIGCONT by which the catch-up sync must have asked
QUIET = 4            # seconds after the catch-up in which no second sync may come


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[CountingPeer]:
    with counting_owner(tmp_path / "owner") as peer:
        yield peer


def test_a_sync_missed_by_more_than_a_minute_runs_on_resume(
        tmp_path: Path, make_node: NodeFactory, owner: CountingPeer) -> None:
    """The issue's case: the due sync was missed by more than a minute (the old scheduler
    dropped a run late by over 60 s as "missed" and waited a full interval). The scheduler
    is stopped before its first sync (due FIRST_SYNC_DELAY s after it started) and resumed
    a minute after that; with a long interval, a dropped run would mean no sync for minutes."""
    peer = owner
    root = tmp_path / "follower"
    follower_dir(root, owner)
    node = make_node("follower", start=False, settings={"sync_interval": LONG_INTERVAL})
    node.start(wait=False)
    alive = root / "state" / "scheduler.alive"  # its first heartbeat, as it starts
    assert wait_for(lambda: alive.exists(), 30), node.log("scheduler")
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
    wait_for(lambda: len(peer.feeds) >= 2, QUIET)  # a second one would be a burst
    after = [t - resumed for t in peer.feeds]
    assert after and after[0] < PROMPT, (after, node.log("scheduler")[-2000:])
    assert len(after) == 1, after
    assert node.alive("scheduler")
    print(f"feed requests after SIGCONT at {[round(t, 2) for t in after]} s")
