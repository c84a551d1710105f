"""The transport keys this node answers feed requests with: per own identity, or decoys.

``POST /feeds/<FP>`` must do the same work whether ``FP`` is hosted here or not
(docs/protocol.md, "No oracle"). So every lookup returns exactly
:data:`exchange.KEY_SLOTS` key pairs: an own identity's current transport key
for this device and its newest previous one still within the grace window,
any empty slot filled with a decoy; for any other fingerprint, decoys only.
The decoys are random per process and never leave it. A request names one
slot by its key id and exactly one is tried (:func:`exchange.pick_slot`).

The table of all own identities is read at once and read again when the
``identities/`` directory changes (every key file write renames into it), when
that change is too recent to trust the directory's time stamp, or after
:data:`MAX_AGE` seconds (so a previous key leaves when its grace window ends).
A lookup is one ``stat`` and one dictionary read, whatever ``FP`` is.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from ..base import noise
from ..base.datadir import DataDir
from ..base.errors import DiwanError
from ..identity.identities import Identities
from . import exchange

MAX_AGE = 30.0
RACY = 2.0  # seconds: a directory changed this recently may change again unseen


@dataclass(frozen=True)
class Served:
    """The key pairs to try for one fingerprint and, if hosted, the owner's current .pub."""

    slots: tuple[noise.Keypair, ...] = field(repr=False)
    pub: bytes | None


@dataclass
class _Table:
    stamp: tuple[int, int]
    loaded: float
    entries: dict[str, Served]


_decoys = tuple(noise.generate_keypair() for _ in range(exchange.KEY_SLOTS))
_DECOY = Served(_decoys, None)
_tables: dict[str, _Table] = {}
_lock = threading.Lock()


def served(dd: DataDir, fp: str) -> Served:
    """The slots for ``fp`` (decoys if it is not an own identity here)."""
    table = _table(dd)
    return table.entries.get(fp, _DECOY)


def _table(dd: DataDir) -> _Table:
    key = str(dd.identities)
    st = os.stat(dd.identities)
    stamp = (st.st_ino, st.st_mtime_ns)
    now = time.time()
    with _lock:
        table = _tables.get(key)
        if table is None or table.stamp != stamp or now - table.loaded > MAX_AGE \
                or table.loaded - st.st_mtime < RACY:
            table = _tables[key] = _Table(stamp, now, _load(dd))
        return table


def _load(dd: DataDir) -> dict[str, Served]:
    ids = Identities(dd)
    entries = {}
    for fp in ids.own_fingerprints():
        try:
            found = ids.transport_keys(fp)[:exchange.KEY_SLOTS]
            pub = ids.pub_document(fp)
        except (DiwanError, OSError):  # a damaged key file: that identity is not served
            continue
        pairs = [noise.Keypair(k.secret, k.public) for k in found]
        entries[fp] = Served(tuple(pairs) + _decoys[len(pairs):], pub)
    return entries


def forget() -> None:
    """Drop every cached table (tests; after a data directory goes away)."""
    with _lock:
        _tables.clear()
