"""Request and byte budgets of the peer port, shared by every worker (docs/protocol.md, Budgets).

Each budget is a key (a network prefix, or an authenticated asker), a limit of
requests and a limit of bytes per fixed window of ``budget_window`` seconds.
The counts live in a table of ``state/nonces.sqlite3`` (an asker's charge is
spent in the transaction that records its request's nonce); spending is one
``BEGIN IMMEDIATE`` transaction, so every gunicorn worker and thread, and a restarted
node, sees the same counts. Past a limit :class:`RateLimited` carries the
seconds until the window ends (sent as ``Retry-After``); nothing is spent then.

Keys: ``net4:a.b.c.0/24`` for IPv4 (an IPv4-mapped IPv6 address counts as
IPv4), ``net6:<prefix>/64`` and ``net6:<prefix>/48`` for IPv6 (both spent),
``asker:<FP>`` for an authenticated contact, ``stranger:<prefix key>`` for an
asker the owner does not know (nothing about a stranger's identity is stored).
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..base.datadir import DataDir
from ..base.errors import RateLimited
from . import nonces
from .nonces import connection, write_transaction

DB_NAME = nonces.DB_NAME
_SCHEMA = ("CREATE TABLE IF NOT EXISTS budgets (key TEXT PRIMARY KEY, window INTEGER NOT NULL,"
           " requests INTEGER NOT NULL, bytes INTEGER NOT NULL) WITHOUT ROWID",
           "CREATE INDEX IF NOT EXISTS budgets_window ON budgets (window)")


_SPEND = ("INSERT INTO budgets (key, window, requests, bytes) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT(key) DO UPDATE SET "
          "requests = CASE WHEN window = ?2 THEN requests + ?3 ELSE ?3 END, "
          "bytes = CASE WHEN window = ?2 THEN bytes + ?4 ELSE ?4 END, window = ?2 "
          "RETURNING requests, bytes")
_swept: dict[Path, int] = {}  # the window each database was last swept of old rows in


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
    try:
        ip = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return ["other:" + remote[:64]]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return [f"net4:{ipaddress.IPv4Network((ip, 24), strict=False)}"]
    return [f"net6:{ipaddress.IPv6Network((ip, bits), strict=False)}" for bits in (64, 48)]


def prefix_charges(settings: dict[str, int], remote: str) -> list[Charge]:
    """One request on each prefix of ``remote`` (no byte limit on prefixes)."""
    out = []
    for key in prefixes(remote):
        wide = key.endswith("/48")
        limit = settings["budget_prefix48_requests" if wide else "budget_prefix_requests"]
        out.append(Charge(key, 1, 0, limit, 0))
    return out


def asker_charge(settings: dict[str, int], key: str, nbytes: int) -> Charge:
    """One request of ``nbytes`` response bytes for an asker key (``asker:``/``stranger:``)."""
    return Charge(key, 1, nbytes, settings["budget_asker_requests"],
                  settings["budget_asker_bytes"])


class Budgets:
    """The budget counts of one data directory."""

    def __init__(self, dd: DataDir) -> None:
        self.path = dd.state / DB_NAME
        self.window = int(dd.settings["budget_window"])

    def spend(self, charges: Sequence[Charge], *, now: int) -> None:
        """Spend every charge or none; :class:`RateLimited` if one would pass its limit."""
        with write_transaction(self.path, _SCHEMA) as conn:
            self.spend_in(conn, charges, now=now)

    def spend_in(self, conn: sqlite3.Connection, charges: Sequence[Charge], *, now: int) -> None:
        """:meth:`spend` inside the caller's transaction on this file (which it rolls back
        on :class:`RateLimited`)."""
        window = now - now % self.window
        retry = max(1, window + self.window - now)
        connection(self.path, _SCHEMA)  # the same connection as conn: its table exists
        if _swept.get(self.path) != window:  # once per window and process: old rows go
            conn.execute("DELETE FROM budgets WHERE window < ?", (window,))
            _swept[self.path] = window
        for c in charges:
            used_requests, used_bytes = conn.execute(_SPEND, (c.key, window, c.requests,
                                                              c.nbytes)).fetchone()
            if used_requests > c.max_requests or (c.nbytes and used_bytes > c.max_bytes):
                raise RateLimited("too many requests from this network or asker; "
                                  f"try again in {retry} s", retry_after=retry)

    def used(self, key: str, *, now: int) -> tuple[int, int]:
        """(requests, bytes) spent on ``key`` in the window of ``now`` (for tests)."""
        window = now - now % self.window
        row = connection(self.path, _SCHEMA).execute(
            "SELECT requests, bytes FROM budgets WHERE key=? AND window=?",
            (key, window)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)
