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

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
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
        self.schemas: set[tuple[Path, tuple[str, ...]]] = set()

    def get(self, path: Path, schema: tuple[str, ...] = ()) -> sqlite3.Connection:
        if self.pid != os.getpid():  # forked: the parent's connections are not ours
            self.pid, self.by_path, self.schemas = os.getpid(), {}, set()
        schema = schema or (_SCHEMA, _INDEX)
        conn = self.by_path.get(path)
        if conn is None:
            if len(self.by_path) >= _CACHE_SIZE:
                self.close_all()
            conn = self.by_path[path] = _open(path)
        if (path, schema) not in self.schemas:  # tables of several stores may share a file
            for statement in schema:
                conn.execute(statement)
            self.schemas.add((path, schema))
        return conn

    def close_all(self) -> None:
        for conn in self.by_path.values():
            conn.close()
        self.by_path.clear()
        self.schemas.clear()


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=True)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


_connections = _Connections()
_swept: dict[Path, int] = {}  # the second each nonce file was last swept of expired rows


def connection(path: Path, schema: tuple[str, ...]) -> sqlite3.Connection:
    """This thread's open connection to the SQLite state file ``path`` (WAL, synchronous
    NORMAL, autocommit), created with the ``schema`` statements the first time."""
    return _connections.get(path, schema)


class _WriterLocks:
    """One writer at a time per database file, across threads (a lock) and processes
    (``flock`` on ``<file>.lock``): waiting writers are woken when the lock is free
    instead of polling SQLite's busy handler, which sleeps whole milliseconds."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.guard = threading.Lock()
        self.locks: dict[Path, tuple[threading.Lock, int]] = {}

    def get(self, path: Path) -> tuple[threading.Lock, int]:
        with self.guard:
            if self.pid != os.getpid():  # forked: a shared open file shares its flock
                self.pid, self.locks = os.getpid(), {}
            found = self.locks.get(path)
            if found is None:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                found = self.locks[path] = (threading.Lock(), fd)
            return found


_writer_locks = _WriterLocks()


@contextlib.contextmanager
def write_transaction(path: Path, schema: tuple[str, ...]) -> Iterator[sqlite3.Connection]:
    """A ``BEGIN IMMEDIATE`` transaction on ``path``, committed on success, rolled back on
    any exception; one writer per file at a time across the node's processes."""
    conn = connection(path, schema)
    lock, fd = _writer_locks.get(path)
    with lock:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


class NonceStore:
    """The nonces of the feed requests this node has served."""

    def __init__(self, dd: DataDir) -> None:
        self.path = dd.state / DB_NAME

    def use(self, nonce: bytes, t: int, *, now: int, window: int,
            then: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Record ``nonce`` (request time ``t``); :class:`Replay` if seen or ``t`` is stale.

        Accepted when ``now - window <= t <= now + window`` and the nonce was
        not recorded before; both edges are inclusive. ``then(conn)`` runs in the
        same transaction (another table of this file; if it raises, the nonce is
        not recorded either).
        """
        if not 0 < len(nonce) <= MAX_NONCE_BYTES:
            raise BadInput(f"a nonce must be 1 to {MAX_NONCE_BYTES} bytes", field="nonce")
        if abs(now - t) > window:
            raise Replay("the request time is outside the accepted window", field="time")
        try:
            with write_transaction(self.path, (_SCHEMA, _INDEX)) as conn:
                if _swept.get(self.path) != now:  # expired rows go once a second
                    conn.execute("DELETE FROM nonces WHERE expires < ?", (now,))
                    _swept[self.path] = now
                conn.execute("INSERT INTO nonces (nonce, expires) VALUES (?, ?)",
                             (nonce, t + window))
                if then is not None:
                    then(conn)
        except sqlite3.IntegrityError:
            raise Replay("this request was already served", field="nonce") from None

    def count(self) -> int:
        """Nonces currently recorded (for tests and the admin's curiosity)."""
        row = _connections.get(self.path).execute("SELECT COUNT(*) FROM nonces").fetchone()
        return int(row[0])


def close_connections() -> None:
    """Close this thread's cached connections (tests; before a data directory goes away)."""
    _connections.close_all()
