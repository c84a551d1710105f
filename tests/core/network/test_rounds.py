"""Dead contacts never starve live ones: real sockets that never answer, a real live peer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.network.contacts import Contact
from app.core.network.rounds import DEADLINE_SKIP, lanes, run_round
from app.core.network.sync import sync_all
from app.core.network.syncstatus import SyncStatus
from tests.helpers.dead_contacts import crowd, live_owners, make_template, never_answering

LIVE, DEAD = 5, 500
ROUND, TIMEOUT = 4, 1


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple:  # type: ignore[type-arg]
    return make_template(tmp_path_factory.mktemp("template"), LIVE)


def test_live_contacts_go_first_and_the_round_keeps_its_deadline(
        tmp_path: Path, template: tuple) -> None:  # type: ignore[type-arg]
    dd, me, owners = template
    with live_owners(dd, owners, tmp_path / "owners") as live, never_answering() as dead:
        c = crowd(dd, me, owners, tmp_path / "me", live, dead, DEAD, sync_timeout=TIMEOUT,
                  sync_round_time=ROUND, sync_parallel=4, sync_parallel_failing=4)
        seen: dict[str, float] = {}
        start = time.monotonic()
        results = sync_all(c.node, progress=lambda st: seen.setdefault(
            st.fingerprint, time.monotonic() - start))
        took = time.monotonic() - start
    by_fp = {st.fingerprint: st for st in results}
    for fp in c.live:
        assert by_fp[fp].last_error is None and by_fp[fp].last_success is not None, by_fp[fp]
        assert seen[fp] < 10, (fp, seen[fp])                 # within 10 s of the round's start
    tried = [fp for fp in c.dead if by_fp[fp].skipped is None]
    left = [fp for fp in c.dead if by_fp[fp].skipped == DEADLINE_SKIP]
    assert len(tried) + len(left) == DEAD
    assert tried and len(left) > DEAD // 2                   # the round did not wait for them
    assert all(by_fp[fp].failures == 2 for fp in tried)
    assert all(by_fp[fp].failures == 1 for fp in left)       # left over is not a failure
    assert took < ROUND + 3 * TIMEOUT + 5, took               # ends near its deadline


def _contact(fp: str) -> Contact:
    return Contact(fp, ("http://127.0.0.1:9",), "00" * 32, 0.0)


def test_lanes_put_live_and_long_waiting_contacts_first() -> None:
    a, b, c, d, e = (f"{i}" * 64 for i in "abcde")
    stored = {
        a: SyncStatus(a, last_attempt=50.0),                               # ok, tried late
        b: SyncStatus(b, last_attempt=10.0),                               # ok, tried early
        c: SyncStatus(c, last_attempt=5.0, failures=3, next_attempt=100.0),
        d: SyncStatus(d, last_attempt=5.0, failures=1, next_attempt=20.0),  # waited longest
    }
    live, failing = lanes([_contact(x) for x in (a, b, c, d, e)], stored)
    assert [x.fingerprint for x in live] == [e, b, a]                      # never tried first
    assert [x.fingerprint for x in failing] == [d, c]


def _settings(**kw: int) -> dict[str, int]:
    return {"sync_round_time": 300, "sync_interval": 600, "sync_timeout": 20,
            "sync_parallel": 1, "sync_parallel_failing": 1, **kw}


def test_a_round_shorter_than_the_timeout_still_starts_contacts() -> None:
    """sync_interval 3 s with sync_timeout 20 s: the first half of the round may start."""
    now = [0.0]
    contacts = [_contact(f"{i}" * 64) for i in "ab"]
    done = run_round(contacts, {}, _settings(sync_interval=3), lambda c: SyncStatus(
        c.fingerprint, last_success=1.0), clock=lambda: now[0])
    assert all(st.skipped is None and st.last_success for st in done.values())


def test_late_contacts_wait_for_the_next_round_unless_the_owner_asked() -> None:
    now = [0.0]

    def slow(c: Contact) -> SyncStatus:
        now[0] += 200  # each sync takes 200 s of the round's clock
        return SyncStatus(c.fingerprint, last_success=1.0)

    contacts = [_contact(f"{i}" * 64) for i in "abc"]
    scheduled = run_round(contacts, {}, _settings(), slow, clock=lambda: now[0])
    assert [scheduled[c.fingerprint].skipped for c in contacts] == [None, None, DEADLINE_SKIP]
    now[0] = 0.0
    asked = run_round(contacts, {}, _settings(), slow, deadline=False, clock=lambda: now[0])
    assert all(st.skipped is None for st in asked.values())
