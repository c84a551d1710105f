"""The post index's SQLite schema (``state/index.sqlite3``): tables, indexes, version.

The index (:mod:`app.core.posts.index`) creates it; the repair
(:mod:`app.core.posts.reconcile`) empties :data:`CONTENT_TABLES` on a rebuild.
"""

SCHEMA_VERSION = 1
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
CONTENT_TABLES = ("posts", "recipients", "replies", "convs", "conv_members", "dirs", "meta")
