"""The post index's SQLite schema (``state/index.sqlite3``): tables, indexes, version.

The index (:mod:`app.core.posts.index`) creates it; the repair
(:mod:`app.core.posts.reconcile`) empties :data:`CONTENT_TABLES` on a rebuild.
A database of an older version that :data:`MIGRATIONS` covers is migrated in place
(additive statements); any other version is recreated.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

SCHEMA_VERSION = 2
DB_NAME = "index.sqlite3"

SCHEMA = """
CREATE TABLE fps(id INTEGER PRIMARY KEY, fp TEXT NOT NULL UNIQUE);
CREATE TABLE posts(id INTEGER PRIMARY KEY, sha BLOB NOT NULL UNIQUE, author INTEGER NOT NULL,
  created INTEGER NOT NULL, kind INTEGER NOT NULL, public INTEGER NOT NULL,
  reaction INTEGER NOT NULL, reshare INTEGER NOT NULL, conv BLOB);
CREATE INDEX posts_time ON posts(created, sha);
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
# Version 1 -> 2: full-text search (app.core.posts.search). A trigger empties a post's
# search row whenever its posts row is deleted (every delete path of the index), and
# the content tables are emptied so that the repair re-reads every post file and
# fills in the text of posts indexed before (the dirs table is emptied with them).
FTS = ("CREATE VIRTUAL TABLE posts_fts USING fts5(body, tokenize='unicode61 remove_diacritics 2')",
       "CREATE TRIGGER posts_fts_gone AFTER DELETE ON posts BEGIN"
       " DELETE FROM posts_fts WHERE rowid = old.id; END")
CONTENT_TABLES = ("posts_fts", "posts", "recipients", "replies", "convs", "conv_members", "dirs",
                  "meta")
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (*FTS, *(f"DELETE FROM {t}" for t in CONTENT_TABLES)),
}


def connect(path: Path, timeout: float) -> tuple[sqlite3.Connection, bool]:
    """Open the index database at ``path`` in WAL mode with a busy timeout (seconds),
    creating (or, on another :data:`SCHEMA_VERSION`, recreating) the schema.

    Returns the connection (autocommit; callers open their own transactions) and
    whether the schema was (re)created. Raises ``sqlite3.Error`` on failure.
    """
    c = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    c.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    _wal(c, timeout)
    c.execute("PRAGMA synchronous=NORMAL")
    created = False
    if c.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        created = _create_schema(c)
    return c, created


def _statements(version: int) -> list[str]:
    """What brings a database of ``version`` up to :data:`SCHEMA_VERSION`: the additive
    migrations, or (another version) dropping every table and creating the schema."""
    if version in MIGRATIONS:
        return [stmt for v in range(version, SCHEMA_VERSION) for stmt in MIGRATIONS[v]]
    stmts = [s for s in SCHEMA.split(";") if s.strip()]
    return stmts + [stmt for v in range(1, SCHEMA_VERSION) for stmt in MIGRATIONS[v][:len(FTS)]]


def _create_schema(c: sqlite3.Connection) -> bool:
    c.execute("BEGIN IMMEDIATE")
    try:
        version = int(c.execute("PRAGMA user_version").fetchone()[0])
        created = version != SCHEMA_VERSION
        if created:
            if version not in MIGRATIONS:
                for (kind, name) in c.execute(
                        "SELECT type, name FROM sqlite_master WHERE type IN ('table')"
                        " AND name NOT LIKE 'sqlite_%'").fetchall():
                    c.execute(f'DROP {kind} IF EXISTS "{name}"')
            for stmt in _statements(version):
                c.execute(stmt)
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
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
