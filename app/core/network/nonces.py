"""Replay protection for feed requests: each nonce is accepted once within its time window.

The store is SQLite at ``state/nonces.sqlite3`` with the nonce as primary key,
so the check-and-record is one ``INSERT`` that SQLite makes atomic across every
gunicorn worker, thread and restart. A row is kept until its request time
plus the window has passed (after that the time check alone refuses it).

The database runs in WAL mode with ``synchronous=NORMAL``: a process crash
loses nothing; a power cut may forget the last few nonces. A request
replayed after that gets a response sealed to the original asker's
ephemeral key, which the replayer cannot open.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from ..base.datadir import DataDir
from ..base.errors import BadInput, Replay

DB_NAME = "nonces.sqlite3"
MAX_NONCE_BYTES = 64
_SCHEMA = ("CREATE TABLE IF NOT EXISTS nonces "
           "(nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID")
_INDEX = "CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires)"
_CACHE_SIZE = 8


class _Connections(threading.local):
    """Open connections of this thread by path (a connection is not shared across threads)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.by_path: dict[Path, sqlite3.Connection] = {}

    def get(self, path: Path, schema: tuple[str, ...] = ()) -> sqlite3.Connection:
        if self.pid != os.getpid():  # forked: the parent's connections are not ours
            self.pid, self.by_path = os.getpid(), {}
        conn = self.by_path.get(path)
        if conn is None:
            if len(self.by_path) >= _CACHE_SIZE:
                self.close_all()
            conn = self.by_path[path] = _open(path, schema or (_SCHEMA, _INDEX))
        return conn

    def close_all(self) -> None:
        for conn in self.by_path.values():
            conn.close()
        self.by_path.clear()


def _open(path: Path, schema: tuple[str, ...]) -> sqlite3.Connection:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=True)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
        conn.execute(statement)
    return conn


_connections = _Connections()


def connection(path: Path, schema: tuple[str, ...]) -> sqlite3.Connection:
    """This thread's open connection to the SQLite state file ``path`` (WAL, synchronous
    NORMAL, autocommit), created with the ``schema`` statements the first time."""
    return _connections.get(path, schema)


class NonceStore:
    """The nonces of the feed requests this node has served."""

    def __init__(self, dd: DataDir) -> None:
        self.path = dd.state / DB_NAME

    def use(self, nonce: bytes, t: int, *, now: int, window: int) -> None:
        """Record ``nonce`` (request time ``t``); :class:`Replay` if seen or ``t`` is stale.

        Accepted when ``now - window <= t <= now + window`` and the nonce was
        not recorded before; both edges are inclusive.
        """
        if not 0 < len(nonce) <= MAX_NONCE_BYTES:
            raise BadInput(f"a nonce must be 1 to {MAX_NONCE_BYTES} bytes", field="nonce")
        if abs(now - t) > window:
            raise Replay("the request time is outside the accepted window", field="time")
        conn = _connections.get(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM nonces WHERE expires < ?", (now,))
                conn.execute("INSERT INTO nonces (nonce, expires) VALUES (?, ?)",
                             (nonce, t + window))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise Replay("this request was already served", field="nonce") from None

    def count(self) -> int:
        """Nonces currently recorded (for tests and the admin's curiosity)."""
        row = _connections.get(self.path).execute("SELECT COUNT(*) FROM nonces").fetchone()
        return int(row[0])


def close_connections() -> None:
    """Close this thread's cached connections (tests; before a data directory goes away)."""
    _connections.close_all()
