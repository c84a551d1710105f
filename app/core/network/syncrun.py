"""A sync the owner asked for from the pages, and whether any sync is running now.

``state/sync_run.json`` (a locked, atomic :class:`StateFile`) records the last run the
owner started: ``started`` (unix seconds), the ``contacts`` it covers and ``finished``
(None while it runs). Progress is read, not written: a contact is *running* while its
sync lock (``state/locks/sync-<fp>.lock``, held by :func:`.sync.sync_contact` in any
process: a worker, the scheduler, the CLI) is held, *done* once its
:class:`.syncstatus.SyncStatus` shows an attempt since the run started, else
*waiting*. A run whose worker died is shown as running for at most
``web_sync_max_age`` seconds.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.statefile import StateFile
from .contacts import Contacts
from .sync import sync_all
from .syncstatus import StatusStore


def lock_held(dd: DataDir, fp: str) -> bool:
    """True if some process holds ``fp``'s sync lock right now (it is being synced)."""
    try:
        fd = os.open(dd.locks / f"sync-{names.fingerprint(fp)}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we got
    return False


def syncing_now(dd: DataDir) -> bool:
    """True if any contact is being synced now, or a run the owner started is going."""
    return any(lock_held(dd, fp) for fp in Contacts(dd).fingerprints()) \
        or bool(progress(dd)["active"])


class SyncRuns:
    """The owner's last "sync now" (``state/sync_run.json``)."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.file = StateFile(dd, "sync_run")

    def start(self, only: Iterable[str] | None = None) -> bool:
        """Record a new run of every contact (or ``only`` these); False, recording nothing,
        if one is still active. Raises :class:`BadFingerprint` for a bad fingerprint."""
        wanted = sorted({names.fingerprint(fp) for fp in only}) if only is not None \
            else sorted(Contacts(self.dd).fingerprints())
        with self.file.update() as data:
            if _active(self.dd, data, time.time()):
                return False
            data.clear()
            data.update(started=time.time(), contacts=wanted, finished=None)
        return True

    def run(self) -> None:
        """Sync the recorded run's contacts now (forced, as the owner asked), then mark it
        finished. Runs in the caller's thread; nothing a contact does raises out."""
        contacts = self.file.read().get("contacts", [])
        try:
            if contacts:
                known = Contacts(self.dd).fingerprints()
                sync_all(self.dd, only=[fp for fp in contacts if fp in known], force=True)
        finally:
            with self.file.update() as data:
                data["finished"] = time.time()


def _active(dd: DataDir, data: dict[str, Any], now: float) -> bool:
    started = data.get("started")
    return isinstance(started, (int, float)) and data.get("finished") is None \
        and now - started < dd.settings["web_sync_max_age"]


def progress(dd: DataDir, now: float | None = None) -> dict[str, Any]:
    """The last run as the status page shows it: ``{"started", "finished", "active",
    "contacts": [{"fingerprint", "state" (waiting, running, done), "status"}]}`` with
    ``status`` the contact's :class:`SyncStatus` dict; ``started`` None if never run."""
    data = StateFile(dd, "sync_run").read()
    started = data.get("started")
    if not isinstance(started, (int, float)):
        return {"started": None, "finished": None, "active": False, "contacts": []}
    statuses = StatusStore(dd).all()
    rows = []
    for fp in data.get("contacts", []):
        if not isinstance(fp, str) or not names.FINGERPRINT_RE.fullmatch(fp):
            continue
        st = statuses.get(fp)
        if lock_held(dd, fp):
            state = "running"
        elif st is not None and st.last_attempt is not None and st.last_attempt >= started:
            state = "done"
        else:
            state = "waiting"
        rows.append({"fingerprint": fp, "state": state,
                     "status": st.to_dict() if st is not None else None})
    finished = data.get("finished")
    return {"started": started, "finished": finished if isinstance(finished, (int, float))
            else None, "active": _active(dd, data, time.time() if now is None else now),
            "contacts": rows}
