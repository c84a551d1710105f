"""The scheduler after a suspend or a clock step: one prompt run, no burst, no stall.

The real APScheduler scheduler and job store are driven with an injected
wall clock (every ``datetime.now`` APScheduler and the worker read), one
look at the jobs at a time, jobs run in the calling thread.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.executors.debug import DebugExecutor

import scheduler.jobs as jobs
import scheduler.worker as worker
from app.core.base.datadir import open_datadir

INTERVAL = 600


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def step(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import apscheduler.executors.base as executors
    import apscheduler.schedulers.base as schedulers

    c = Clock()

    class Fake(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return c.now.astimezone(tz) if tz else c.now.replace(tzinfo=None)

    for module in (schedulers, executors, jobs):
        monkeypatch.setattr(module, "datetime", Fake)
    monkeypatch.setattr(worker, "_now", lambda: c.now)
    return c


def test_a_missed_sync_runs_once_on_waking_and_clock_steps_neither_stop_nor_loop(
        tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[datetime] = []
    monkeypatch.setattr(jobs, "run_sync", lambda dd: ran.append(clock.now))
    monkeypatch.setattr(jobs, "run_gc", lambda dd: None)
    dd = open_datadir(tmp_path, {"sync_interval": INTERVAL})
    sched = worker.build(dd)
    sched.add_executor(DebugExecutor(), "default")  # jobs run in this thread
    sched._main_loop = lambda: None  # type: ignore[method-assign]  # the test wakes it
    sched.start()
    try:
        def wake() -> float:
            wait = sched._process_jobs()
            assert wait is not None and 0 <= wait <= 10  # a wake-up is noticed promptly
            return wait

        clock.step(jobs.FIRST_SYNC_DELAY)
        wake()
        assert len(ran) == 1                       # the first sync
        clock.step(3 * INTERVAL + 100)             # asleep (or stopped) past three due syncs
        wake()
        assert len(ran) == 2                       # exactly one, at once
        wake()
        assert len(ran) == 2                       # no burst
        clock.step(INTERVAL - 100)                 # back on the usual grid
        wake()
        assert len(ran) == 3
        clock.step(-3600)                          # the clock steps back an hour
        wake()
        assert len(ran) == 3                       # no run in a loop...
        clock.step(INTERVAL)
        wake()
        assert len(ran) == 4                       # ...and no hour-long stall
        clock.step(10 * 86400)                     # forwards ten days
        wake()
        wake()
        assert len(ran) == 5
        clock.step(INTERVAL)
        wake()
        assert len(ran) == 6
    finally:
        sched.shutdown(wait=False)
