"""Per-contact sync status and the back-off of failing contacts.

``state/sync_status.json`` maps each contact's fingerprint to a
:class:`SyncStatus`: attempts, successes, the last error, posts received and
refused, and the cursor a sync continues from. A contact that fails waits
``min(sync_interval * 2**failures, sync_max_backoff)`` seconds before the
scheduler tries it again; a forced sync (admin API, CLI) ignores the wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..base.datadir import DataDir
from ..base.statefile import StateFile
from .contacts import Contact, Contacts

DUE_SLACK = 0.1  # a contact is due this fraction of sync_interval before next_attempt


@dataclass
class SyncStatus:
    """What the node knows about pulling one contact's feed.

    Times are unix seconds (``float`` for attempts, ``int`` CREATED_TIMEs for cursors);
    ``cursor_*`` is where the next sync starts, ``resume_*`` where a run cut short by
    ``sync_max_pages`` stopped; ``skipped`` (not stored) says why a ``sync_all`` left it.
    ``address`` is the address that answered last (or was tried last); ``reach`` maps each
    address tried to ``{"ok": last success, "failures": n, "next": next attempt}``
    (:mod:`.reach`).
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
    cursor_time: int | None = None
    cursor_sha: str | None = None
    cursor_identity: str | None = None
    resume_time: int | None = None  # where a run cut short by sync_max_pages stopped
    resume_sha: str | None = None
    skipped: str | None = None  # why a sync_all left it alone this time (not stored)
    reach: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, fp: str, raw: Any) -> SyncStatus:
        """The status of ``fp`` from a stored dict; fields missing or of the wrong type get
        their defaults (a damaged entry never raises)."""
        status = cls(fp)
        if isinstance(raw, dict):
            for f in fields(cls):
                value = raw.get(f.name, getattr(status, f.name))
                if f.name not in ("fingerprint", "skipped") and _fits(value, str(f.type)):
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
        """``never`` (not attempted), ``ok`` (the last attempt succeeded) or ``failing``."""
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


# status file ----------------------------------------------------------------------------

class StatusStore:
    """``state/sync_status.json``: contact FP -> :class:`SyncStatus` fields."""

    def __init__(self, dd: DataDir) -> None:
        self.file = StateFile(dd, "sync_status")

    def get(self, fp: str) -> SyncStatus:
        """The stored status of ``fp`` (an empty one if none); :class:`CorruptFile` if the
        file is not a JSON object."""
        return SyncStatus.from_dict(fp, self.file.read().get(fp))

    def all(self) -> dict[str, SyncStatus]:
        """Every stored status by fingerprint; :class:`CorruptFile` as :meth:`get`."""
        return {fp: SyncStatus.from_dict(fp, raw) for fp, raw in self.file.read().items()}

    def save(self, status: SyncStatus, keep: Iterable[str] | None = None) -> None:
        """Store ``status``; entries of fingerprints not in ``keep`` are dropped.

        Raises :class:`CorruptFile` if the file is not a JSON object.
        """
        stored = asdict(status)
        stored.pop("skipped", None)
        with self.file.update() as data:
            data[status.fingerprint] = stored
            if keep is not None:
                wanted = set(keep) | {status.fingerprint}
                for fp in [fp for fp in data if fp not in wanted]:
                    del data[fp]


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
    out = []
    for contact in Contacts(dd).list():
        status = stored.get(contact.fingerprint) or SyncStatus(contact.fingerprint)
        status.of_contact(contact)
        out.append(status)
    return out
