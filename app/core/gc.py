"""Clean-up: forget other people's public keys that have not been used for a long time.

Every use of a key touches its ``.pub`` file (see ``Identities.touch``), so
the file's mtime says when it was last needed. :func:`gc` deletes
``identities/<FP>.pub`` files unused for ``gc_unused_days`` days, except own
identities, contacts, members of any group (the blocked included) and the
identities contacts are followed by. A deleted key is fetched again by
fingerprint if content ever needs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .contacts import Contacts
from .datadir import DataDir
from .fsio import remove_quiet
from .identities import Identities

log = logging.getLogger("diwan.gc")
DAY = 86400


def kept(dd: DataDir) -> set[str]:
    """Fingerprints whose keys are never cleaned up."""
    ids = Identities(dd)
    keep = set(ids.own_fingerprints())
    for contact in Contacts(dd).list():
        keep.update((contact.fingerprint, contact.identity))
    for group in ids.groups():
        keep.update(ids.members(group))
    return keep


def _unused(ids: Identities, keep: set[str], cutoff: float) -> list[str]:
    out = []
    for fp in ids.all_fingerprints():
        if fp in keep or ids.is_own(fp):
            continue
        try:
            if ids.pub_path(fp).stat().st_mtime < cutoff:
                out.append(fp)
        except FileNotFoundError:
            continue
    return out


def gc(dd: DataDir, *, dry_run: bool, clock: Callable[[], float] = time.time) -> list[str]:
    """Delete (or with ``dry_run`` only list) unused keys; return their fingerprints."""
    ids = Identities(dd)
    cutoff = clock() - dd.settings["gc_unused_days"] * DAY
    candidates = _unused(ids, kept(dd), cutoff)
    if dry_run or not candidates:
        return candidates
    # look again just before deleting: a key may have been used, or made a contact, meanwhile
    again = set(_unused(ids, kept(dd), cutoff))
    gone = [fp for fp in candidates if fp in again and remove_quiet(ids.pub_path(fp))]
    if gone:
        log.info("removed %d unused public keys", len(gone))
    return gone
