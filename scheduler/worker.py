"""The scheduler worker: a blocking APScheduler running the node's periodic jobs."""

from __future__ import annotations

import logging
import signal
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler

from app.core.base import logsetup, runstate
from app.core.base.datadir import DataDir, open_datadir
from app.core.base.fsio import write_atomic

log = logging.getLogger("diwan.scheduler")


def heartbeat(dd: DataDir) -> None:
    """Record that the scheduler is alive (``state/scheduler.alive``)."""
    import time

    write_atomic(dd.state / "scheduler.alive", f"{time.time():.3f}\n".encode())


def build(dd: DataDir) -> BlockingScheduler:
    sched = BlockingScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                            "misfire_grace_time": 60})
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
    dd = open_datadir()
    logsetup.configure(dd.settings, "scheduler")
    runstate.write_pid(dd, "scheduler")
    sched = build(dd)

    def stop(signum: int, frame: Any) -> None:
        log.info("stopping on signal %s", signum)
        sched.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started in %s", dd.root)
    try:
        sched.start()
    finally:
        runstate.clear_pid(dd, "scheduler")
