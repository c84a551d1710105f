"""Replay protection for feed requests: each nonce is accepted once within its time window.

The store is ``state/nonces.bin``, a fixed open-addressing table of :data:`SLOTS`
records read and written in place (``pread``/``pwrite``) under an exclusive
``flock`` of the file and a thread lock, as ``budgets.bin``: the check-and-record
is atomic for every gunicorn worker and thread, and a restarted node sees the
same records, at the cost of four system calls (no database transaction).

A record is ``nonce hash (16) || expires (8)``: the BLAKE2b-128 of the nonce and
the second (request time + window) after which the time check alone refuses
the request. A nonce probes :data:`PROBES` records from its hash: one holding its
hash and not yet expired makes the request a replay; otherwise it takes the
first expired (or never used) record. If every probed record holds a live nonce
(a flood of that many requests within one window), the request is refused
with :class:`RateLimited` (fail closed) until the soonest of them expires.

Nothing is synced to disk: a process crash loses nothing (the page cache
keeps the write); a power cut may forget the last few nonces. A request
replayed after that gets a response whose keys need the original asker's
ephemeral secret, which the replayer lacks.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import threading
import time

from ..base.datadir import DataDir
from ..base.errors import BadInput, RateLimited, Replay
from ..base.fixedtable import close_fixed_tables, open_fixed_table, record_starting

MAX_NONCE_BYTES = 64
FILE_NAME = "nonces.bin"
SLOTS = 1 << 19                    # 12 MiB at most on disk (a sparse file until used)
PROBES = 32
_RECORD = struct.Struct(">16sQ")   # nonce hash, expires (unix seconds)
_EXPIRES = struct.Struct(">Q")


def _open_table(path: str) -> tuple[int, threading.Lock]:
    """This process's descriptor of the table at ``path`` and its thread lock."""
    return open_fixed_table(path, SLOTS * _RECORD.size)


class NonceStore:
    """The nonces of the feed requests this node has served."""

    def __init__(self, dd: DataDir) -> None:
        self.path = f"{dd.state}{os.sep}{FILE_NAME}"

    def use(self, nonce: bytes, t: int, *, now: int, window: int) -> None:
        """Record ``nonce`` (request time ``t``); :class:`Replay` if seen or ``t`` is stale.

        Accepted when ``now - window <= t <= now + window`` and the nonce was
        not recorded before; both edges are inclusive. :class:`RateLimited` if
        the table has no room for it (see the module).
        """
        if not 0 < len(nonce) <= MAX_NONCE_BYTES:
            raise BadInput(f"a nonce must be 1 to {MAX_NONCE_BYTES} bytes", field="nonce")
        if abs(now - t) > window:
            raise Replay("the request time is outside the accepted window", field="time")
        digest = hashlib.blake2b(nonce, digest_size=16).digest()
        start = int.from_bytes(digest[:8], "big") % SLOTS
        fd, lock = _open_table(self.path)
        with lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                offset = self._probe(fd, digest, start, now)
                os.pwrite(fd, _RECORD.pack(digest, t + window), offset)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @staticmethod
    def _probe(fd: int, digest: bytes, start: int, now: int) -> int:
        """The offset of the record to take; :class:`Replay` if ``digest`` is live there."""
        size = _RECORD.size
        block = os.pread(fd, size * min(PROBES, SLOTS - start), start * size)
        if SLOTS - start < PROBES:
            block += os.pread(fd, size * (PROBES - (SLOTS - start)), 0)
        if not record_starting(block, digest, size):  # the usual case: the first expired one
            for i in range(len(block) // size):
                if _EXPIRES.unpack_from(block, i * size + 16)[0] < now:
                    return ((start + i) % SLOTS) * size
        free, soonest = None, None
        for i, (key, expires) in enumerate(_RECORD.iter_unpack(block)):
            if expires < now:
                if free is None:
                    free = ((start + i) % SLOTS) * size
            elif key == digest:
                raise Replay("this request was already served", field="nonce")
            else:
                soonest = expires if soonest is None else min(soonest, expires)
        if free is None:
            retry = max(1, (soonest or now) - now + 1)
            raise RateLimited(f"too many requests within the replay window; try again in "
                              f"{retry} s", retry_after=retry)
        return free

    def count(self, *, now: int | None = None) -> int:
        """Nonces recorded and not expired at ``now`` (default: the clock); for tests."""
        at = int(time.time()) if now is None else now
        fd, _ = _open_table(self.path)
        data = os.pread(fd, SLOTS * _RECORD.size, 0)
        return sum(1 for _, expires in _RECORD.iter_unpack(data) if expires >= at)


def close_files() -> None:
    """Close this process's table descriptors (tests; before a data directory goes away)."""
    close_fixed_tables()
