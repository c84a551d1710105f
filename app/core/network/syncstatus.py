"""Per-contact sync status and the back-off of failing contacts.

``state/sync/<FP>.json`` holds each contact's :class:`SyncStatus`: attempts,
successes, the last error, posts received and refused, and the cursors a sync
continues from. A contact that fails waits
``min(sync_interval * 2**failures, sync_max_backoff)`` seconds before the
scheduler tries it again; a forced sync (admin API, CLI) ignores the wait.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.fsio import file_lock, write_atomic
from ..base.statefile import StateFile
from ..identity.identities import Identities
from .contacts import Contact, Contacts

DIR_NAME = "sync"              # state/sync/<FP>.json
LEGACY_NAME = "sync_status"    # state/sync_status.json, before issue 9
DUE_SLACK = 0.1  # a contact is due this fraction of sync_interval before next_attempt


@dataclass
class SyncStatus:
    """What the node knows about pulling one contact's feed.

    Times are unix seconds; ``cursors`` maps each serving node (the owner's device id)
    to where the next sync starts, ``{"epoch", "after", "identity"}`` (positions in that
    node's storage order, :mod:`.follow`); ``skipped`` and ``blocked`` (not stored) say
    why a ``sync_all`` left it and that the contact is blocked. ``address`` is the
    address that answered last (or was tried last); ``reach`` maps each address tried
    to ``{"ok": last success, "failures": n, "next": next attempt}`` (:mod:`.reach`).
    """

    fingerprint: str
    address: str | None = None
    identity: str | None = None
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    failures: int = 0
    next_attempt: float | None = None
    posts_received: int = 0
    posts_last_run: int = 0
    pages_last_run: int = 0
    rejected: int = 0
    rejected_last_run: int = 0
    last_rejection: str | None = None
    cursors: dict[str, Any] = field(default_factory=dict)  # device id -> cursor
    skipped: str | None = None  # why a sync_all left it alone this time (not stored)
    reach: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocked: bool = False       # the contact is blocked (not stored)

    @classmethod
    def from_dict(cls, fp: str, raw: Any) -> SyncStatus:
        """The status of ``fp`` from a stored dict; fields missing or of the wrong type get
        their defaults (a damaged entry never raises)."""
        status = cls(fp)
        if isinstance(raw, dict):
            for f in fields(cls):
                value = raw.get(f.name, getattr(status, f.name))
                if f.name not in ("fingerprint", "skipped", "blocked") and \
                        _fits(value, str(f.type)):
                    setattr(status, f.name, value)
        return status

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``state`` (:meth:`state`), JSON-able."""
        return {**asdict(self), "state": self.state()}

    def of_contact(self, contact: Contact) -> None:
        """Take the contact's following identity; keep the address that answered last if the
        contact still has it, else show its hand-set address."""
        self.identity = contact.identity
        if self.address not in contact.every_address:
            self.address = contact.address

    def state(self) -> str:
        """``blocked`` (the contact is blocked: not polled), ``never`` (not attempted),
        ``ok`` (the last attempt succeeded) or ``failing``."""
        if self.blocked:
            return "blocked"
        if self.last_attempt is None:
            return "never"
        return "ok" if self.failures == 0 else "failing"


def _fits(value: Any, type_text: str) -> bool:
    """True if a stored ``value`` suits a field annotated ``type_text`` (e.g. "int | None")."""
    if value is None:
        return "None" in type_text
    if isinstance(value, dict):
        return type_text.startswith("dict") and all(
            isinstance(k, str) and isinstance(v, dict) for k, v in value.items())
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return "int" in type_text or "float" in type_text
    if isinstance(value, float):
        return "float" in type_text
    return isinstance(value, str) and "str" in type_text


def backoff(settings: dict[str, Any], failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row:
    ``min(sync_interval * 2**failures, sync_max_backoff)``, 0 for none."""
    if failures <= 0:
        return 0.0
    interval, cap = settings["sync_interval"], settings["sync_max_backoff"]
    return float(min(interval * 2 ** min(failures, 62), cap))


def is_due(settings: dict[str, Any], status: SyncStatus, now: float) -> bool:
    """True unless the contact is backing off (with a little slack for the scheduler's jitter)."""
    if status.next_attempt is None:
        return True
    return bool(now >= status.next_attempt - DUE_SLACK * settings["sync_interval"])


# status files ---------------------------------------------------------------------------

class StatusStore:
    """``state/sync/<FP>.json``: one contact's :class:`SyncStatus` fields per file, so a
    sync reads and writes only its own contact's (written under that contact's sync lock,
    atomically, mode 0600). A damaged file reads as an empty status. The single
    ``state/sync_status.json`` of earlier versions is split into these on first use."""

    def __init__(self, dd: DataDir) -> None:
        self.dir = dd.state / DIR_NAME
        self.legacy = StateFile(dd, LEGACY_NAME)

    def _path(self, fp: str) -> Path:
        return self.dir / f"{names.fingerprint(fp)}.json"

    def _migrate(self) -> None:
        """Split a ``state/sync_status.json`` left by an earlier version (then remove it);
        :class:`CorruptFile` if it is not a JSON object."""
        if not os.path.exists(self.legacy.path):
            return
        with file_lock(self.legacy.lock_path):
            if not os.path.exists(self.legacy.path):
                return
            self.dir.mkdir(mode=0o700, exist_ok=True)
            for fp, raw in self.legacy.read().items():
                if names.FINGERPRINT_RE.fullmatch(fp) and not self._path(fp).exists():
                    self.save(SyncStatus.from_dict(fp, raw))
            os.unlink(self.legacy.path)

    def get(self, fp: str) -> SyncStatus:
        """The stored status of ``fp`` (an empty one if none or damaged);
        :class:`BadFingerprint` for a bad ``fp``."""
        self._migrate()
        try:
            raw = json.loads(self._path(fp).read_bytes())
        except (FileNotFoundError, ValueError):
            raw = None
        return SyncStatus.from_dict(fp, raw)

    def fingerprints(self) -> list[str]:
        """The fingerprints with a stored status, sorted."""
        self._migrate()
        try:
            with os.scandir(self.dir) as entries:
                return sorted(e.name[:-5] for e in entries if e.name.endswith(".json")
                              and names.FINGERPRINT_RE.fullmatch(e.name[:-5]))
        except FileNotFoundError:
            return []

    def all(self) -> dict[str, SyncStatus]:
        """Every stored status by fingerprint."""
        return {fp: self.get(fp) for fp in self.fingerprints()}

    def save(self, status: SyncStatus, keep: Iterable[str] | None = None) -> None:
        """Store ``status``; the statuses of fingerprints not in ``keep`` (when given) are
        removed. Raises ``OSError`` if the file cannot be written."""
        stored = {f.name: getattr(status, f.name) for f in fields(status)
                  if f.name not in ("skipped", "blocked")}
        self.dir.mkdir(mode=0o700, exist_ok=True)
        write_atomic(self._path(status.fingerprint), json.dumps(
            stored, sort_keys=True, separators=(",", ":")).encode("ascii"), mode=0o600)
        if keep is not None:
            self.prune(set(keep) | {status.fingerprint})

    def prune(self, keep: Iterable[str]) -> None:
        """Remove the statuses of fingerprints not in ``keep`` (contacts removed since)."""
        wanted = set(keep)
        for fp in self.fingerprints():
            if fp not in wanted:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(fp))


def start_run(status: SyncStatus, address: str, identity: str, now: float) -> None:
    """Mark ``status`` as a run starting at ``now`` (unix seconds) at ``address``, as
    ``identity``: the per-run counters back to zero."""
    status.address, status.identity = address, identity
    status.last_attempt = now
    status.posts_last_run = status.pages_last_run = status.rejected_last_run = 0
    status.skipped = None


def finish_run(settings: dict[str, Any], status: SyncStatus, error: str | None,
               clock: Callable[[], float]) -> None:
    """Record the end of a run: success (``error`` None) clears the failures; a failure
    counts one more and sets the back-off (:func:`backoff`) from ``clock()``."""
    if error is None:
        status.last_success, status.last_error = clock(), None
        status.failures, status.next_attempt = 0, None
    else:
        status.last_error = error
        status.failures += 1
        status.next_attempt = clock() + backoff(settings, status.failures)


def statuses(dd: DataDir) -> list[SyncStatus]:
    """The status of every contact, by fingerprint (a contact never synced has an empty one).

    Raises :class:`CorruptFile` for a damaged contacts or status file.
    """
    stored = StatusStore(dd).all()
    ids = Identities(dd)
    out = []
    for contact in Contacts(dd).list():
        status = stored.get(contact.fingerprint) or SyncStatus(contact.fingerprint)
        status.of_contact(contact)
        status.blocked = ids.is_blocked(contact.fingerprint)
        out.append(status)
    return out
