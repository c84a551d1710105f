"""Request and byte budgets of the peer port, shared by every worker (docs/protocol.md, Budgets).

Each budget is a key (a network prefix, or an authenticated asker), a limit of
requests and a limit of bytes per fixed window of ``budget_window`` seconds.
The counts live in ``state/budgets.bin``, a fixed table of :data:`SLOTS`
records read and written in place (``pread``/``pwrite``) under an exclusive
``flock`` of the file and a thread lock: every gunicorn worker and thread, and
a restarted node, sees the same counts, at the cost of a few system calls (no
database transaction, no ``fsync``: the counts are not worth one; a power cut
may lose or garble the counts of the last moments, never more).

A record is ``key hash (16) || window (8) || requests (8) || bytes (8)``, the
hash a BLAKE2b-128 of the key; a key probes :data:`PROBES` records from its
hash and takes its own, else one of an older window. If every probed record
is taken in the current window (a flood from that many prefixes), the new key
is refused (fail closed). Past a limit :class:`RateLimited` carries the seconds
until the window ends (sent as ``Retry-After``); nothing is spent then.

The prefix budgets count the requests that get no page (not authenticated,
malformed, replayed, past the asker's budget): checked before any decryption,
spent when the request fails (:meth:`Budgets.unless_served`). A served request
spends its asker's budget instead, so served askers on one network never lock
each other out (review finding S2); a sender of junk still spends its whole
prefix's budget, which is what bounds the work done before anyone is known.

Keys: ``net4:a.b.c.0/24`` for IPv4 (an IPv4-mapped IPv6 address counts as
IPv4), ``net6:<prefix>/64`` and ``net6:<prefix>/48`` for IPv6 (both spent),
``asker:<FP>`` for an authenticated contact, ``stranger:<prefix key>`` for an
asker the owner does not know (nothing about a stranger's identity is stored).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import ipaddress
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..base.datadir import DataDir
from ..base.errors import RateLimited
from ..base.fixedtable import open_fixed_table, record_starting

FILE_NAME = "budgets.bin"
SLOTS = 65536
PROBES = 32
_RECORD = struct.Struct(">16sQQQ")  # key hash, window, requests, bytes


@dataclass(frozen=True)
class Charge:
    """Spend ``requests`` and ``nbytes`` on ``key``, whose limits per window are given."""

    key: str
    requests: int
    nbytes: int
    max_requests: int
    max_bytes: int


def prefixes(remote: str) -> list[str]:
    """The budget keys of a remote address: its /24 (IPv4) or its /64 and /48 (IPv6)."""
    return list(_prefixes(remote))


@functools.lru_cache(maxsize=4096)
def _prefixes(remote: str) -> tuple[str, ...]:
    try:
        ip = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return ("other:" + remote[:64],)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return (f"net4:{ipaddress.IPv4Network((ip, 24), strict=False)}",)
    return tuple(f"net6:{ipaddress.IPv6Network((ip, bits), strict=False)}" for bits in (64, 48))


def prefix_charges(settings: dict[str, Any], remote: str) -> list[Charge]:
    """One request on each prefix of ``remote`` (no byte limit on prefixes)."""
    out = []
    for key in prefixes(remote):
        wide = key.endswith("/48")
        limit = settings["budget_prefix48_requests" if wide else "budget_prefix_requests"]
        out.append(Charge(key, 1, 0, limit, 0))
    return out


def asker_charge(settings: dict[str, Any], key: str, nbytes: int) -> Charge:
    """One request of ``nbytes`` response bytes for an asker key (``asker:``/``stranger:``)."""
    return Charge(key, 1, nbytes, settings["budget_asker_requests"],
                  settings["budget_asker_bytes"])




def _open(path: str) -> tuple[int, threading.Lock]:
    """This process's descriptor of the table at ``path`` and its thread lock."""
    return open_fixed_table(path, SLOTS * _RECORD.size)


class Budgets:
    """The budget counts of one data directory."""

    def __init__(self, dd: DataDir) -> None:
        self.path = f"{dd.state}{os.sep}{FILE_NAME}"
        self.window = int(dd.settings["budget_window"])

    def spend(self, charges: Sequence[Charge], *, now: int, check_only: bool = False) -> None:
        """Spend every charge or none; :class:`RateLimited` if one would pass its limit.

        ``check_only``: raise as ``spend`` would, but write nothing and take no lock
        (a count read while another worker writes it is at most one request off).
        """
        window = now - now % self.window
        retry = max(1, window + self.window - now)
        fd, lock = _open(self.path)
        if check_only:
            for c in charges:
                self._charged(fd, c, window, retry, {})
            return
        with lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                updates: dict[int, bytes] = {}
                for c in charges:
                    offset, record = self._charged(fd, c, window, retry, updates)
                    updates[offset] = record
                for offset, record in updates.items():
                    os.pwrite(fd, record, offset)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def unless_served(self, charges: Sequence[Charge], *, now: int) -> Iterator[None]:
        """Refuse now if ``charges`` are spent (:class:`RateLimited`), and spend them only
        if the body raises: the prefix budgets count the requests that get no page."""
        self.spend(charges, now=now, check_only=True)
        try:
            yield
        except BaseException:
            with contextlib.suppress(RateLimited):  # reached meanwhile by another worker
                self.spend(charges, now=now)
            raise

    def _charged(self, fd: int, c: Charge, window: int, retry: int,
                 pending: dict[int, bytes]) -> tuple[int, bytes]:
        """(offset, new record) of ``c`` spent; :class:`RateLimited` past a limit or when
        every probed record is taken in this window (``pending``: this spend's records)."""
        digest = _digest(c.key)
        offset, used_requests, used_bytes = self._find(fd, digest, window, pending)
        if offset is None:
            raise RateLimited("too many requests from too many networks; try again in "
                              f"{retry} s", retry_after=retry)
        requests, nbytes = used_requests + c.requests, used_bytes + c.nbytes
        if requests > c.max_requests or (c.nbytes and nbytes > c.max_bytes):
            raise RateLimited("too many requests from this network or asker; "
                              f"try again in {retry} s", retry_after=retry)
        return offset, _RECORD.pack(digest, window, requests, nbytes)

    def _find(self, fd: int, digest: bytes, window: int, pending: dict[int, bytes] | None = None
              ) -> tuple[int | None, int, int]:
        """(offset, requests, bytes) of ``digest``'s record in ``window``, or of a free one."""
        start = int.from_bytes(digest[:8], "big") % SLOTS
        size = _RECORD.size
        block = os.pread(fd, size * min(PROBES, SLOTS - start), start * size)
        if SLOTS - start < PROBES:
            block += os.pread(fd, size * (PROBES - (SLOTS - start)), 0)
        current = window.to_bytes(8, "big")
        if not pending and not record_starting(block, digest, size):
            return _first_free(block, start, current, size), 0, 0
        pending = pending or {}
        free: int | None = None
        for i in range(PROBES):
            offset = ((start + i) % SLOTS) * size
            record = pending.get(offset) or block[i * size:(i + 1) * size]
            if record[:16] == digest:
                if record[16:24] != current:
                    return offset, 0, 0
                _, _, requests, nbytes = _RECORD.unpack(record)
                return offset, requests, nbytes
            if free is None and record[16:24] != current and offset not in pending:
                free = offset
        return free, 0, 0

    def used(self, key: str, *, now: int) -> tuple[int, int]:
        """(requests, bytes) spent on ``key`` in the window of ``now`` (for tests)."""
        fd, _ = _open(self.path)
        digest = _digest(key)
        offset, requests, nbytes = self._find(fd, digest, now - now % self.window)
        return (requests, nbytes) if offset is not None else (0, 0)


@functools.lru_cache(maxsize=4096)
def _digest(key: str) -> bytes:
    """The 16-byte BLAKE2b of a budget key (a record's first field)."""
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def _first_free(block: bytes, start: int, current: bytes, size: int) -> int | None:
    """The offset of the first record of ``block`` not of the ``current`` window, or None."""
    for i in range(len(block) // size):
        if block[i * size + 16:i * size + 24] != current:
            return ((start + i) % SLOTS) * size
    return None
