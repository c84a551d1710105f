"""The node's periodic jobs: when they run. Their bodies are core functions.

``sync`` pulls every contact's feed every ``sync_interval`` seconds (first run
shortly after the scheduler starts); ``gc`` deletes unused public keys every
``gc_interval`` seconds. Each job logs a one-line summary and never raises
into the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler

from app.core.base.datadir import DataDir
from app.core.network.sync import sync_all
from app.core.upkeep.gc import gc

log = logging.getLogger("diwan.scheduler")

FIRST_SYNC_DELAY = 5  # seconds after start (lets the peer app come up first)
FIRST_GC_DELAY = 300

Register = Callable[[BaseScheduler, DataDir], None]


def _soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def run_sync(dd: DataDir) -> None:
    """The scheduled sync: every contact that is not backing off."""
    try:
        results = sync_all(dd)
    except Exception:
        log.exception("scheduled sync failed")
        return
    ran = [s for s in results if s.skipped is None]
    failed = [s for s in ran if s.last_error]
    received = sum(s.posts_last_run for s in ran)
    log.info("sync: %d contacts synced, %d failed, %d skipped, %d new posts",
             len(ran), len(failed), len(results) - len(ran), received)


def run_gc(dd: DataDir) -> None:
    """The scheduled clean-up of unused public keys."""
    try:
        removed = gc(dd, dry_run=False)
    except Exception:
        log.exception("scheduled clean-up failed")
        return
    log.info("gc: %d unused public keys removed", len(removed))


def register_sync(sched: BaseScheduler, dd: DataDir) -> None:
    sched.add_job(run_sync, "interval", seconds=dd.settings["sync_interval"], args=[dd],
                  id="sync", next_run_time=_soon(FIRST_SYNC_DELAY))


def register_gc(sched: BaseScheduler, dd: DataDir) -> None:
    sched.add_job(run_gc, "interval", seconds=dd.settings["gc_interval"], args=[dd],
                  id="gc", next_run_time=_soon(FIRST_GC_DELAY))


JOBS: tuple[Register, ...] = (register_sync, register_gc)
