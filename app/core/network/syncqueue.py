"""Syncs asked for now, run in the background by the scheduler (a newly added contact).

The node's processes share only the data directory, so a request is a file:
``state/sync-requests/<FP>`` (empty, named by the contact's fingerprint). The
admin API or the CLI writes it (:func:`request_sync`) and returns at once; the
scheduler looks every ``sync_request_poll`` seconds
(:func:`app.core.network.sync.run_requested`),
takes every request (deleting the files first, so one written meanwhile is seen
next time) and syncs those contacts at once, back-off or not. A request for a
contact removed since is dropped; a blocked one is skipped as in any sync.
"""

from __future__ import annotations

import os

from ..base import names
from ..base.datadir import DataDir
from ..base.fsio import write_atomic

DIR_NAME = "sync-requests"


def request_sync(dd: DataDir, fp: str) -> None:
    """Ask the scheduler to sync contact ``fp`` soon; :class:`BadFingerprint` for a bad
    ``fp``; ``OSError`` if the request cannot be written."""
    folder = dd.state / DIR_NAME
    folder.mkdir(mode=0o700, exist_ok=True)
    write_atomic(folder / names.fingerprint(fp), b"", mode=0o600)


def pending(dd: DataDir) -> list[str]:
    """The fingerprints with a sync request waiting, sorted (other names are ignored)."""
    try:
        with os.scandir(dd.state / DIR_NAME) as entries:
            return sorted(e.name for e in entries if names.FINGERPRINT_RE.fullmatch(e.name))
    except FileNotFoundError:
        return []


def take(dd: DataDir) -> list[str]:
    """Remove and return the waiting requests."""
    taken = []
    for fp in pending(dd):
        try:
            os.unlink(dd.state / DIR_NAME / fp)
        except FileNotFoundError:
            continue  # another taker was first
        taken.append(fp)
    return taken

