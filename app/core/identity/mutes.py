"""Muted keys: their posts are hidden from the owner's timeline, without blocking them.

``state/muted.json`` maps each muted fingerprint to the unix time it was muted
(a :class:`app.core.base.statefile.StateFile`: atomic, locked, 0600). Unlike a block,
muting changes nothing on the network: a muted key's posts are still fetched, stored,
served to others and shown on its own page and in threads; only the timeline and the
notifications leave them out (``docs/architecture.md``, The web pages).
"""

from __future__ import annotations

import time

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import Conflict
from ..base.statefile import StateFile
from .identities import Identities


class Mutes:
    """The muted keys of one data directory (``state/muted.json``)."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.file = StateFile(dd, "muted")

    def all(self) -> set[str]:
        """Every muted fingerprint (entries that are not fingerprints are skipped)."""
        return {fp for fp in self.file.read() if names.FINGERPRINT_RE.fullmatch(fp)}

    def is_muted(self, fp: str) -> bool:
        """True if ``fp`` is muted."""
        return fp in self.all()

    def mute(self, fp: str) -> bool:
        """Mute ``fp`` (a full fingerprint); False if it already was.

        Raises :class:`BadFingerprint` and :class:`Conflict` for an own identity.
        """
        names.fingerprint(fp)
        if Identities(self.dd).is_own(fp):
            raise Conflict("you cannot mute your own identity", field="fingerprint")
        with self.file.update() as data:
            if fp in data:
                return False
            data[fp] = int(time.time())
        return True

    def unmute(self, fp: str) -> bool:
        """Unmute ``fp``; True if it was muted. Raises :class:`BadFingerprint`."""
        names.fingerprint(fp)
        with self.file.update() as data:
            return data.pop(fp, None) is not None
