"""The peer workers' shared connection counts (app/run/acceptbalance.py), without gunicorn."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from app.run import acceptbalance


@pytest.fixture
def table() -> Iterator[None]:
    acceptbalance._table, acceptbalance._rows = None, set()
    acceptbalance.share()
    yield
    acceptbalance._table, acceptbalance._rows = None, set()


def test_a_worker_restarted_many_times_never_shares_a_row_with_a_live_one(table: None) -> None:
    """Rows are given by the master, not taken by ``age % SLOTS``: after 100 restarts of
    one worker its row still differs from the survivor's, and forgetting each dead one
    leaves the survivor's count in place (found by the end-of-session tester: after 63
    restarts the 65th worker wrote the first one's row, and balancing broke)."""
    survivor = SimpleNamespace(age=1)
    acceptbalance.assign(survivor)
    mine = acceptbalance.Slot(acceptbalance._table, survivor.balance_row)  # type: ignore[arg-type]
    mine.set(7)
    for age in range(2, 102):
        worker = SimpleNamespace(age=age)
        acceptbalance.assign(worker)
        assert worker.balance_row != survivor.balance_row
        acceptbalance.forget(worker)
    assert mine.fewest_elsewhere() is None
    other = SimpleNamespace(age=102)
    acceptbalance.assign(other)
    theirs = acceptbalance.Slot(acceptbalance._table, other.balance_row)  # type: ignore[arg-type]
    theirs.pid = mine.pid + 1  # another process, as after a fork
    theirs.set(3)
    assert mine.fewest_elsewhere() == 3 and theirs.fewest_elsewhere() == 7


def test_past_slots_workers_a_worker_gets_no_row(table: None) -> None:
    """At the edge: SLOTS workers alive take every row; one more gets none (it neither
    steps aside nor counts), and a row comes free when one of them exits."""
    alive = [SimpleNamespace(age=i) for i in range(acceptbalance.SLOTS)]
    for worker in alive:
        acceptbalance.assign(worker)
    assert sorted(w.balance_row for w in alive) == list(range(acceptbalance.SLOTS))
    extra = SimpleNamespace(age=acceptbalance.SLOTS)
    acceptbalance.assign(extra)
    assert extra.balance_row is None and acceptbalance.claim(extra) is None
    acceptbalance.forget(alive[5])
    acceptbalance.assign(extra)
    assert extra.balance_row == 5


def test_without_a_table_nothing_is_shared() -> None:
    """A worker of an app run without the node's gunicorn settings (no on_starting)."""
    acceptbalance._table = None
    worker = SimpleNamespace(age=1)
    acceptbalance.assign(worker)
    assert worker.balance_row is None and acceptbalance.claim(worker) is None

