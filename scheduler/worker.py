"""The scheduler worker: a blocking APScheduler running the node's periodic jobs.

Laptops sleep and clocks step. The scheduler therefore:

- runs a job that became due while the process was stopped or the machine
  slept exactly once, as soon as it wakes (``misfire_grace_time=None``: never
  dropped as "missed"; ``coalesce``: several missed runs become one);
- never sleeps longer than :data:`MAX_SLEEP` seconds at a time, so a wake-up
  is noticed promptly even though its timer (a monotonic clock that stops
  during suspend) has not run out;
- mends a wall clock stepped backwards: a job whose next run is more than one
  interval away (impossible unless the clock went back) is moved to one
  interval from now, so the schedule never stops for the size of the step. A
  step forwards is an ordinary missed run: one run, then the usual interval.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.core.base import logsetup, mallocarenas, runstate
from app.core.base.datadir import DataDir, open_datadir, server_root
from app.core.base.errors import DiwanError
from app.core.base.fsio import remove_stale_temps, write_atomic
from app.core.base.lifeline import exit_with_supervisor, hold_running, hold_sole
from app.core.posts.reconcile import open_index
from app.core.posts.records import finish_forgotten

log = logging.getLogger("diwan.scheduler")

MAX_SLEEP = 10.0  # seconds the scheduler sleeps at most between looks at the clock
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


class WakefulScheduler(BlockingScheduler):
    """A blocking scheduler that survives suspend and clock steps (see the module doc)."""

    def _process_jobs(self) -> float | None:
        self.mend_clock_steps(_now())
        wait = super()._process_jobs()
        return MAX_SLEEP if wait is None else min(wait, MAX_SLEEP)

    def mend_clock_steps(self, now: Any) -> None:
        """Pull in interval jobs whose next run is further than one interval away."""
        for job in self.get_jobs():
            trigger, due = job.trigger, job.next_run_time
            if isinstance(trigger, IntervalTrigger) and due is not None \
                    and due - now > trigger.interval:
                log.warning("the clock went back: %s runs one interval from now", job.id)
                job.modify(next_run_time=now + trigger.interval)


def heartbeat(dd: DataDir) -> None:
    """Record that the scheduler is alive (``state/scheduler.alive``)."""
    import time

    write_atomic(dd.state / "scheduler.alive", f"{time.time():.3f}\n".encode())


def build(dd: DataDir) -> WakefulScheduler:
    """The scheduler with every job registered (not started)."""
    sched = WakefulScheduler(job_defaults=dict(JOB_DEFAULTS))
    sched.add_job(heartbeat, "interval", seconds=30, args=[dd], id="heartbeat",
                  next_run_time=_now())
    for register in _extra_jobs():
        register(sched, dd)
    return sched


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _extra_jobs() -> list[Any]:
    """Job registrations contributed by other core features (sync, clean-up)."""
    from . import jobs

    return list(jobs.JOBS)


def main() -> None:
    try:
        dd = open_datadir(server_root())
    except DiwanError as exc:  # a bad setting or an open secret: one line, no traceback
        raise SystemExit(f"diwan-scheduler: error: {exc.message}") from None
    sole = hold_sole(dd.locks, "scheduler")  # held until this process exits
    if sole is None:
        raise SystemExit(f"diwan-scheduler: error: a scheduler already runs for {dd.root} "
                         f"(pid {runstate.read_pid(dd, 'scheduler') or 'unknown'})")
    logsetup.configure(dd.settings, "scheduler")
    mallocarenas.limit(dd.settings["malloc_arena_max"])  # before any thread starts
    for path in remove_stale_temps(dd.root, dd.settings["temp_max_age"]):
        log.info("removed a temporary file left by a crash: %s", path)
    for sha1 in finish_forgotten(dd, open_index(dd)):
        log.info("finished removing post %s, deleted here before a crash", sha1)
    runstate.write_pid(dd, "scheduler")
    running = hold_running(dd.locks)  # noqa: F841 - held until this process exits
    exit_with_supervisor()  # SIGTERM when diwan up dies, however it dies
    sched = build(dd)

    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        log.info("stopping on signal %s", signum)
        stopping.append(signum)
        try:
            sched.shutdown(wait=False)
        except SchedulerNotRunningError:  # before start() (then it is not started) or twice
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started in %s", dd.root)
    try:
        if not stopping:
            sched.start()
    finally:
        from . import jobs

        jobs.stop_all()  # the LAN announcement's goodbye, the router mapping removed
        runstate.clear_pid(dd, "scheduler")
