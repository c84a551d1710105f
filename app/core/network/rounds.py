"""How one sync round schedules its contacts: live ones first, dead ones never in their way.

A round (:func:`run_round`, called by :func:`.sync.sync_all`) splits the
contacts it will sync into two lanes, each with its own bounded pool of
threads, so at most ``sync_parallel + sync_parallel_failing`` connections
are in flight:

- the *live* lane (``sync_parallel`` slots): contacts whose last attempt
  succeeded or that were never tried, the least recently attempted first;
- the *failing* lane (``sync_parallel_failing`` slots): contacts whose last
  attempt failed (and whose back-off is over), the longest waiting first.

A dead contact costs a failing-lane slot for at most its request timeouts;
the live lane never waits for it. A scheduled round has a deadline:
``min(sync_round_time, sync_interval)`` seconds after it starts. A contact
not started ``sync_timeout`` seconds before the deadline (but never before
half of the round has passed) is left for the next round (status
``skipped = "round deadline"``; not a failure, no back-off) and, having
waited longest, goes first then. A contact already started finishes within
its own timeouts. A sync the owner asks for (``deadline=False``) has no
deadline: every contact is tried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import NotFound
from ..identity.identities import Identities
from .contacts import Contact, Contacts
from .syncstatus import StatusStore, SyncStatus, is_due

DEADLINE_SKIP = "round deadline"
SyncOne = Callable[[Contact], SyncStatus]
Progress = Callable[[SyncStatus], None]


def lanes(contacts: Sequence[Contact], stored: Mapping[str, SyncStatus]
          ) -> tuple[list[Contact], list[Contact]]:
    """``(live, failing)``: ``contacts`` split by their last attempt and put in order.

    ``stored`` maps fingerprints to their statuses (missing: never tried).
    Live: never tried first, then the least recently attempted. Failing: the
    earliest ``next_attempt`` (longest waiting) first, then fewest failures.
    """
    def status(c: Contact) -> SyncStatus:
        return stored.get(c.fingerprint) or SyncStatus(c.fingerprint)

    live = [c for c in contacts if status(c).failures == 0]
    failing = [c for c in contacts if status(c).failures > 0]
    live.sort(key=lambda c: status(c).last_attempt or 0.0)
    failing.sort(key=lambda c: (status(c).next_attempt or 0.0, status(c).failures))
    return live, failing


def last_start(settings: Mapping[str, Any], start: float) -> float:
    """The latest time (seconds) a contact may start in a round that began at ``start``:
    ``sync_timeout`` before the round's end, but not before half of the round has passed."""
    length = float(min(settings["sync_round_time"], settings["sync_interval"]))
    return start + max(length - float(settings["sync_timeout"]), length / 2)


def run_round(contacts: Sequence[Contact], stored: Mapping[str, SyncStatus],
              settings: Mapping[str, Any], one: SyncOne, *,
              progress: Progress | None = None, deadline: bool = True,
              clock: Callable[[], float] = time.monotonic) -> dict[str, SyncStatus]:
    """Sync ``contacts`` with ``one`` in two lanes (see the module doc); return every status.

    ``progress`` is called in this thread with each status as it is known;
    ``deadline`` False tries every contact however long it takes.
    ``clock`` is the round's clock in seconds (monotonic: a wall-clock step
    neither ends a round early nor stretches it). Raises nothing ``one`` does
    not raise.
    """
    latest = last_start(settings, clock()) if deadline else float("inf")
    live, failing = lanes(contacts, stored)

    def guarded(contact: Contact) -> SyncStatus:
        if clock() > latest:
            status = stored.get(contact.fingerprint) or SyncStatus(contact.fingerprint)
            status.of_contact(contact)
            status.skipped = DEADLINE_SKIP
            return status
        return one(contact)

    results: dict[str, SyncStatus] = {}
    with ThreadPoolExecutor(settings["sync_parallel"], "diwan-sync") as live_pool, \
            ThreadPoolExecutor(settings["sync_parallel_failing"], "diwan-sync-failing") as slow:
        futures: dict[Future[SyncStatus], str] = {live_pool.submit(guarded, c): c.fingerprint
                                                  for c in live}
        futures.update({slow.submit(guarded, c): c.fingerprint for c in failing})
        for future in as_completed(futures):
            status = results[futures[future]] = future.result()
            if progress:
                progress(status)
    return results


def plan(dd: DataDir, contacts: list[Contact], force: bool, now: float
          ) -> tuple[list[SyncStatus], list[Contact]]:
    """Split contacts into those left alone this time (with why) and those to sync."""
    stored = StatusStore(dd).all()
    skipped, todo = [], []
    for contact in contacts:
        status = stored.get(contact.fingerprint) or SyncStatus(contact.fingerprint)
        status.of_contact(contact)
        if Identities(dd).is_blocked(contact.fingerprint):
            status.skipped, status.blocked = "blocked", True
        elif not force and not is_due(dd.settings, status, now):
            status.skipped = "backing off"
        else:
            todo.append(contact)
            continue
        skipped.append(status)
    return skipped, todo


def chosen(dd: DataDir, only: Iterable[str] | None) -> list[Contact]:
    """Every contact, or those of ``only`` (:class:`NotFound` for one that is not)."""
    contacts = Contacts(dd).list()
    if only is None:
        return contacts
    wanted = {names.fingerprint(fp) for fp in only}
    missing = wanted - {c.fingerprint for c in contacts}
    if missing:
        raise NotFound(f"{sorted(missing)[0]} is not a contact", field="fingerprint")
    return [c for c in contacts if c.fingerprint in wanted]
