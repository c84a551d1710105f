"""The post index's SQLite schema (``state/index.sqlite3``): tables, indexes, version.

The index (:mod:`app.core.posts.index`) creates it; the repair
(:mod:`app.core.posts.reconcile`) empties :data:`CONTENT_TABLES` on a rebuild.

Full-text search (table ``posts_fts``, :mod:`app.core.posts.search`) was added after
version 1 without a version change: :func:`add_search` creates it and its delete
trigger when an index lacks them (additive; an index that already held posts has its
content tables emptied, so the repair re-reads every file and fills in their text).

``posts.pos`` is the post's position in this node's storage order (docs/protocol.md,
"Positions and epochs"): per author, increasing in the order the rows were inserted,
never below the clock in microseconds. ``meta`` row ``epoch`` names the numbering;
a rebuild empties ``meta``, so a rebuilt index numbers its posts in a new epoch.
An index made before positions existed gets the column on open (:func:`migrate`:
additive; its rows are numbered in insertion order).

Version 2 has no ``posts_time(created, sha)`` index: a page of every kind merges one
``posts_kind`` range per kind instead (:meth:`app.core.posts.index.Index.page`). Its keys
came in random order (a feed spans all of time), so once the index was large each row
of a batch landed on its own page, and every such page was written to the WAL and again
by the checkpoint; it was a third of what a batch wrote at 100,000 posts (bench/README.md,
"Growth: before and after"). A version-1 index is upgraded in place on open
(:data:`UPGRADES`: the index dropped, rows kept); an older node opening a version-2
index recreates it and its repair refills it, as for any other version.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base.config import DEFAULTS

SCHEMA_VERSION = 2
DB_NAME = "index.sqlite3"

SCHEMA = """
CREATE TABLE fps(id INTEGER PRIMARY KEY, fp TEXT NOT NULL UNIQUE);
CREATE TABLE posts(id INTEGER PRIMARY KEY, sha BLOB NOT NULL UNIQUE, author INTEGER NOT NULL,
  created INTEGER NOT NULL, kind INTEGER NOT NULL, public INTEGER NOT NULL,
  reaction INTEGER NOT NULL, reshare INTEGER NOT NULL, conv BLOB, pos INTEGER);
CREATE INDEX posts_author ON posts(author, created, sha);
CREATE INDEX posts_kind ON posts(kind, created, sha);
CREATE INDEX posts_author_kind ON posts(author, kind, created, sha);
CREATE INDEX posts_conv ON posts(conv, created, sha) WHERE conv IS NOT NULL;
CREATE TABLE recipients(fp INTEGER NOT NULL, post INTEGER NOT NULL,
  PRIMARY KEY(fp, post)) WITHOUT ROWID;
CREATE INDEX recipients_post ON recipients(post);
CREATE TABLE replies(parent BLOB NOT NULL, post INTEGER NOT NULL,
  PRIMARY KEY(parent, post)) WITHOUT ROWID;
CREATE INDEX replies_post ON replies(post);
CREATE TABLE convs(id BLOB PRIMARY KEY, members TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE conv_members(fp INTEGER NOT NULL, conv BLOB NOT NULL,
  PRIMARY KEY(fp, conv)) WITHOUT ROWID;
CREATE TABLE dirs(fp TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
# One search row per post with text (rowid = posts.id); the trigger removes it whenever
# the post's row is deleted, by any delete path of the index.
SEARCH_SCHEMA = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS posts_fts USING fts5(body,"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS posts_fts_gone AFTER DELETE ON posts BEGIN"
    " DELETE FROM posts_fts WHERE rowid = old.id; END")

# Added after version 1 without a version change (created when missing, see _add_tables):
# tombstones: (SHA-1, author) pairs a deletion record of that author deleted
# (docs/protocol.md, Deletion records); edits: post id -> the SHA-1 it supersedes.
ADDED_SCHEMA = """
CREATE TABLE IF NOT EXISTS tombstones(sha BLOB NOT NULL, author INTEGER NOT NULL,
  record INTEGER NOT NULL, PRIMARY KEY(sha, author)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tombstones_record ON tombstones(record);
CREATE TABLE IF NOT EXISTS edits(old BLOB NOT NULL, post INTEGER NOT NULL,
  PRIMARY KEY(old, post)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edits_post ON edits(post);
"""
ADDED_TABLES = ("tombstones", "edits")
POSITIONS_INDEX = "CREATE INDEX IF NOT EXISTS posts_pos ON posts(author, pos)"
# Versions upgraded in place on open (no row changes): the statements that make them current.
UPGRADES = {1: ("DROP INDEX IF EXISTS posts_time",)}
CONTENT_TABLES = ("posts_fts", "posts", "recipients", "replies", "convs", "conv_members", "dirs",
                  "meta", *ADDED_TABLES)


PAGE_BYTES = 4096  # SQLite's default page size, kept (bench/README.md, "Growth")


@dataclass(frozen=True)
class Sizing:
    """How a connection's page cache and checkpoint threshold follow the index's size
    (settings ``index_cache_mib``/``index_cache_max_mib``, ``index_checkpoint_pages``/
    ``index_checkpoint_max_pages``): the cache a quarter of the database, the WAL twice
    its pages, each between its least and most (the least wins if they cross)."""

    cache_mib: int = DEFAULTS["index_cache_mib"]
    cache_max_mib: int = DEFAULTS["index_cache_max_mib"]
    checkpoint_pages: int = DEFAULTS["index_checkpoint_pages"]
    checkpoint_max_pages: int = DEFAULTS["index_checkpoint_max_pages"]

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Sizing:
        """The sizing a node's settings give."""
        return cls(settings["index_cache_mib"], settings["index_cache_max_mib"],
                   settings["index_checkpoint_pages"], settings["index_checkpoint_max_pages"])

    def for_size(self, db_bytes: int) -> tuple[int, int]:
        """(cache in KiB, checkpoint threshold in pages) for a database of ``db_bytes``."""
        quarter_kib = db_bytes // 4 // 1024
        cache_kib = max(1024 * self.cache_mib, min(1024 * self.cache_max_mib, quarter_kib))
        pages = max(self.checkpoint_pages,
                    min(self.checkpoint_max_pages, 2 * (db_bytes // PAGE_BYTES)))
        return cache_kib, pages

    def fit(self, c: sqlite3.Connection, path: Path | str) -> None:
        """Set ``c``'s cache and checkpoint threshold for the database at ``path`` as it
        is now (a missing file counts as empty). Raises ``sqlite3.Error``."""
        try:
            db_bytes = os.stat(path).st_size
        except OSError:
            db_bytes = 0
        cache_kib, pages = self.for_size(db_bytes)
        c.execute(f"PRAGMA cache_size={-cache_kib}")  # negative: KiB
        c.execute(f"PRAGMA wal_autocheckpoint={pages}")


def connect(path: Path, timeout: float, *, sizing: Sizing | None = None
            ) -> tuple[sqlite3.Connection, bool]:
    """Open the index database at ``path`` in WAL mode with a busy timeout (seconds),
    creating the schema, upgrading it in place (a version in :data:`UPGRADES`), or
    recreating it (any other version than :data:`SCHEMA_VERSION`).

    ``sizing`` (:class:`Sizing`; the defaults if None) sets the page cache and the WAL
    size past which a commit checkpoints, from the database's size now; a writer sets
    them again before each write transaction (:meth:`Index.write`), so both grow with
    the index. A batch of random keys (SHA-1s; a feed's posts across all of time)
    touches a page per row once the index is large: a checkpoint after every commit
    (SQLite's default, 1,000 pages) wrote each of them to the database again at every
    batch, where a larger WAL copies a page once for many batches; and a cache smaller
    than the pages a batch descends through reads them again from the file for each row
    (bench/README.md, "Growth: before and after" and "Growth, stop 21"). Durability:
    WAL with ``synchronous=FULL``, so a committed transaction survives a power cut (the
    write-ahead log is flushed at each commit; ``NORMAL`` flushed it only at checkpoints,
    and a power cut could lose the rows of the last batches ingest had reported stored;
    one flush per batch, ~2 ms for 500 posts).

    Returns the connection (autocommit; callers open their own transactions) and
    whether the schema was (re)created. Raises ``sqlite3.Error`` on failure.
    """
    c = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    c.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    _wal(c, timeout)
    c.execute("PRAGMA synchronous=FULL")  # the WAL flushed at each commit (see above)
    (sizing or Sizing()).fit(c, path)
    created = False
    if c.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        _upgrade(c)
        created = _create_schema(c)
    _add_tables(c)  # first: add_search may empty every content table, these included
    add_search(c)
    migrate(c)
    return c, created


def add_search(c: sqlite3.Connection) -> bool:
    """Create the search table and its trigger if the index lacks them; True if it did.

    An index that already held posts then has its :data:`CONTENT_TABLES` emptied (their
    text was never indexed): the automatic repair, or ``diwan reindex`` at once, refills
    them from the post files. Raises ``sqlite3.Error`` on failure.
    """
    def present() -> bool:
        return c.execute("SELECT 1 FROM sqlite_master WHERE type='trigger'"
                         " AND name='posts_fts_gone'").fetchone() is not None

    if present():
        return False
    with _immediate(c):
        added = not present()  # another process may have added it meanwhile
        if added:
            held = c.execute("SELECT 1 FROM posts LIMIT 1").fetchone() is not None
            for stmt in SEARCH_SCHEMA:
                c.execute(stmt)
            for table in CONTENT_TABLES if held else ():
                c.execute(f"DELETE FROM {table}")
    return added


def _add_tables(c: sqlite3.Connection) -> None:
    """Create the :data:`ADDED_SCHEMA` tables an index made by an older node lacks (an
    additive migration: no existing row changes, nothing is rebuilt)."""
    found = {r[0] for r in c.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name IN"
        f" ({','.join('?' * len(ADDED_TABLES))})", ADDED_TABLES)}
    if found == set(ADDED_TABLES):
        return
    with _immediate(c):
        for stmt in ADDED_SCHEMA.split(";"):
            if stmt.strip():
                c.execute(stmt)


def migrate(c: sqlite3.Connection) -> None:
    """Add the ``posts.pos`` column (existing rows numbered by row id, i.e. insertion
    order) and its index to an index that lacks them (idempotent; additive, like
    :func:`add_search`). Raises ``sqlite3.Error`` on failure."""
    if any(r[1] == "pos" for r in c.execute("PRAGMA table_info(posts)")) and c.execute(
            "SELECT 1 FROM sqlite_master WHERE type='index' AND name='posts_pos'").fetchone():
        return
    with _immediate(c):
        if not any(r[1] == "pos" for r in c.execute("PRAGMA table_info(posts)")):
            c.execute("ALTER TABLE posts ADD COLUMN pos INTEGER")
            c.execute("UPDATE posts SET pos = id")
            c.execute("DELETE FROM meta WHERE key='epoch'")
        c.execute(POSITIONS_INDEX)


@contextmanager
def _immediate(c: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction on ``c``: committed, or rolled back on any error."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")


def _upgrade(c: sqlite3.Connection) -> None:
    """Bring an index of a version in :data:`UPGRADES` to :data:`SCHEMA_VERSION` in place
    (one transaction; a concurrent opener may have done it already)."""
    with _immediate(c):
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version in UPGRADES:
            for stmt in UPGRADES[version]:
                c.execute(stmt)
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _create_schema(c: sqlite3.Connection) -> bool:
    with _immediate(c):
        created = bool(c.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION)
        if created:
            for (kind, name) in c.execute(
                    "SELECT type, name FROM sqlite_master WHERE type IN ('table')"
                    " AND name NOT LIKE 'sqlite_%'").fetchall():
                c.execute(f'DROP {kind} IF EXISTS "{name}"')
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return created


def _wal(c: sqlite3.Connection, timeout: float) -> None:
    """Switch a new database to WAL. Two processes or threads opening a brand-new index
    at once race for the switch, and SQLite answers "database is locked" at once
    (the busy handler does not cover it): retry until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if c.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                c.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
