"""Which of a contact's addresses to try, in what order, and what this node tells others.

A contact has several addresses (:class:`.contacts.Contact`: hand-set, then
learned). Each address has its own record in the contact's sync status
(``SyncStatus.reach``)::

    {"http://10.0.0.7:8889": {"ok": 1700000000.0, "failures": 0, "next": null}}

A sync tries the addresses not backing off, the one that last succeeded first
(then hand-set before learned, in their listed order); when every address is
backing off, only the one due soonest. An address that fails backs off like a
contact (``min(sync_interval * 2**failures, sync_max_backoff)``), alone.
docs/protocol.md, "Addresses that follow you".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..base.datadir import DataDir
from ..base.errors import BadResponse, PeerError
from ..base.statefile import StateFile
from . import lan
from .addresses import peer_urls
from .contacts import Contact, Contacts
from .syncstatus import SyncStatus, backoff

log = logging.getLogger("diwan.sync")

PORTMAP_STATE = "portmap"  # state/portmap.json: {"url": public URL, "expires": unix s}


def _record(status: SyncStatus, address: str) -> dict[str, Any]:
    return status.reach.get(address) or {}


def order(contact: Contact, status: SyncStatus, now: float) -> list[str]:
    """The addresses to try this run, best first (see the module doc)."""
    every = contact.every_address
    ranked = sorted(range(len(every)),
                    key=lambda i: (-float(_record(status, every[i]).get("ok") or 0), i))
    ordered = [every[i] for i in ranked]
    due = [a for a in ordered if float(_record(status, a).get("next") or 0) <= now]
    if due:
        return due
    return [min(ordered, key=lambda a: float(_record(status, a).get("next") or 0))]


def record(status: SyncStatus, address: str, ok: bool, now: float,
           settings: dict[str, Any]) -> None:
    """Note one attempt at ``address``: a success clears its back-off, a failure extends it."""
    rec = dict(_record(status, address))
    if ok:
        rec.update(ok=now, failures=0, next=None)
    else:
        failures = int(rec.get("failures") or 0) + 1
        rec.update(failures=failures, next=now + backoff(settings, failures))
        rec.setdefault("ok", None)
    status.reach[address] = rec
    status.address = address


def anywhere(dd: DataDir, contact: Contact, status: SyncStatus,
             attempt: Callable[[str], bool]) -> bool:
    """``attempt(address)`` at the contact's addresses in turn (:func:`order`), then at
    those LAN discovery finds for its tag (:func:`.lan.find`); the first that does not
    raise :class:`PeerError` or :class:`BadResponse` wins and its result is returned.
    A failure after a page was stored (``status.pages_last_run``) is not retried
    elsewhere. An address found on the LAN is learned only once the authenticated
    exchange succeeded there. Raises the first address's error if none answers."""
    first: DiwanErrors | None = None
    tried = []
    for address in order(contact, status, time.time()):
        try:
            return attempt(address)
        except (PeerError, BadResponse) as exc:
            if status.pages_last_run:
                raise
            first = first or exc
        tried.append(address)
    for address in lan.find(dd, contact.fingerprint):
        if address in tried:
            continue
        try:
            done = attempt(address)
        except (PeerError, BadResponse) as exc:
            log.info("%s: found on the LAN at %s, but: %s", contact.fingerprint, address,
                     exc.message)
            if status.pages_last_run:
                raise
            continue
        log.info("%s: reached at %s, found on the LAN", contact.fingerprint, address)
        Contacts(dd).learn(contact.fingerprint, [address], dd.settings["max_learned_addresses"])
        return done
    raise first or PeerError(f"{contact.fingerprint} has no address to try")


DiwanErrors = PeerError | BadResponse


def prune(status: SyncStatus, contact: Contact) -> None:
    """Forget the records of addresses the contact no longer has."""
    for address in [a for a in status.reach if a not in contact.every_address]:
        del status.reach[address]


def mapped_url(dd: DataDir, now: float) -> str | None:
    """The public URL of this node's router mapping (:mod:`.portmap`), if one is live."""
    entry = StateFile(dd, PORTMAP_STATE).read()
    found, expires = entry.get("url"), entry.get("expires")
    if isinstance(found, str) and isinstance(expires, int | float) and expires > now:
        return found
    return None


def own_reach(dd: DataDir, now: float) -> list[str]:
    """The addresses this node tells its contacts (and askers, for the identities it
    serves): ``public_url``, a live router mapping, then the peer port's addresses."""
    return peer_urls(dd.settings, mapped_url(dd, now))
