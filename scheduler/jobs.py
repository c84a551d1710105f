"""The node's periodic jobs: when they run. Their bodies are core functions.

``sync`` pulls every contact's feed (and each own identity's feed from its other
nodes) every ``sync_interval`` seconds (first run
shortly after the scheduler starts); ``requested`` syncs, every ``sync_request_poll``
seconds, the contacts a sync was asked for (a newly added contact: the admin API
and the CLI write a request file and return); ``gc`` deletes unused public keys every
``gc_interval`` seconds. ``reach`` (every minute, first at start) keeps the LAN
announcement current (``lan_discovery``: a new UTC day, new addresses, new
identities) and the router's port mapping renewed (``port_mapping``); both
are withdrawn when the scheduler stops (:func:`stop_all`). Each job logs a
one-line summary and never raises into the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler

from app.core.base.datadir import DataDir
from app.core.network.lan import Announcer
from app.core.network.ownsync import sync_own_nodes
from app.core.network.portmap import PortMapper
from app.core.network.sync import run_requested, sync_all
from app.core.upkeep.gc import gc

log = logging.getLogger("diwan.scheduler")

FIRST_SYNC_DELAY = 5  # seconds after start (lets the peer app come up first)
FIRST_GC_DELAY = 300
REACH_INTERVAL = 60

Register = Callable[[BaseScheduler, DataDir], None]


def _soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def run_sync(dd: DataDir) -> None:
    """The scheduled sync: every contact that is not backing off, then the other nodes of
    each own identity."""
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
    try:
        own = sync_own_nodes(dd)
    except Exception:
        log.exception("scheduled sync of own nodes failed")
        return
    if own:
        log.info("sync: %d other own nodes pulled, %d failed, %d new posts", len(own),
                 sum(1 for o in own if o["last_error"]), sum(o["posts_last_run"] for o in own))


def run_requested_syncs(dd: DataDir) -> None:
    """The syncs asked for now (a newly added contact); nothing to do most of the time."""
    try:
        results = run_requested(dd)
    except Exception:
        log.exception("requested sync failed")
        return
    if results:
        log.info("requested sync: %d contacts, %d failed, %d new posts", len(results),
                 sum(1 for s in results if s.last_error),
                 sum(s.posts_last_run for s in results))


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


def register_requested(sched: BaseScheduler, dd: DataDir) -> None:
    sched.add_job(run_requested_syncs, "interval", seconds=dd.settings["sync_request_poll"],
                  args=[dd], id="requested", next_run_time=_soon(1))


def register_gc(sched: BaseScheduler, dd: DataDir) -> None:
    sched.add_job(run_gc, "interval", seconds=dd.settings["gc_interval"], args=[dd],
                  id="gc", next_run_time=_soon(FIRST_GC_DELAY))


_reaching: list[Announcer | PortMapper] = []  # what stop_all withdraws


def run_reach(dd: DataDir) -> None:
    """Refresh the LAN announcement and the port mapping (each only if switched on)."""
    for part in _reaching:
        try:
            part.refresh()
        except Exception:
            log.exception("refreshing %s failed", type(part).__name__)


def register_reach(sched: BaseScheduler, dd: DataDir) -> None:
    if dd.settings["lan_discovery"]:
        _reaching.append(Announcer(dd))
    if dd.settings["port_mapping"]:
        _reaching.append(PortMapper(dd))
    if _reaching:
        sched.add_job(run_reach, "interval", seconds=REACH_INTERVAL, args=[dd], id="reach",
                      next_run_time=_soon(0))


def stop_all() -> None:
    """Withdraw the LAN announcement and remove the router mapping (scheduler exit)."""
    while _reaching:
        part = _reaching.pop()
        try:
            part.stop()
        except Exception:
            log.exception("stopping %s failed", type(part).__name__)


JOBS: tuple[Register, ...] = (register_sync, register_requested, register_gc, register_reach)
