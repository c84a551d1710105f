"""The post index: a SQLite cache of post metadata at ``state/index.sqlite3``.

The post files (``posts/<FP>/<SHA1>``) are the truth; this database only makes listing
fast and can be thrown away at any time (:meth:`Index.rebuild`). Several processes
(gunicorn workers, the scheduler, the CLI) open it at once: WAL mode, a busy timeout,
short ``BEGIN IMMEDIATE`` write transactions.

It is repaired when files are added or removed behind its back by
:mod:`app.core.posts.reconcile` (only author directories whose mtime changed are
rescanned): an index opened with :func:`app.core.posts.reconcile.open_index` runs that
repair, bounded, before each query through its ``repair`` hook. Rows a query would
return whose file has vanished are dropped on the spot.

Listing is keyset pagination over ``(created, sha)`` indexes, newest first, merging one
range per author and/or kind (all kinds: one per listed kind): O(limit) rows per range.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput
from . import tombstones
from .codec import DELETION, Post
from .indexbulk import insert_bulk, insert_conv
from .indexschema import DB_NAME, Sizing, connect
from .listing import (
    COLUMNS,
    DELETION_CODE,
    KIND_CODE,
    KINDS,
    RESHARES_SEEN_BY,
    Entry,
    Page,
    conversation_id,
    decode_cursor,
    kind_codes,
)
from .searchtext import index_text

# What a listing shows: not deletion records, not versions an edit by their author replaced.
# CROSS JOIN fixes the loop order: edits by the row's SHA-1 (nearly always none), then the
# editing post by id. Left to itself the planner walked every post of the row's author
# and probed edits for each: O(the author's posts) per row listed.
LISTED = (f"p.kind != {DELETION_CODE} AND NOT EXISTS (SELECT 1 FROM edits e CROSS JOIN posts n"
          " ON n.id = e.post WHERE e.old = p.sha AND n.author = p.author)")

# Every kind a listing can show: a page of all kinds merges one posts_kind range each
# (there is no index over every kind: indexschema, version 2).
LISTED_CODES = tuple(code for code in range(len(KINDS)) if code != DELETION_CODE)
Scope = tuple[str, tuple[str, ...], tuple[Any, ...]]
_POOL = threading.local()  # .conns: db path -> (pid, connection), most recently used last
_POOL_SIZE = 8             # databases a thread keeps open at once
_ID_CACHES: dict[str, tuple[dict[str, int], dict[int, str]]] = {}  # db path -> fp<->id
_pid = [os.getpid()]       # this process's pid, kept by a fork hook (getpid is a system call)
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


class Index:
    """The post index of one data directory (thread-safe: one connection per thread).

    ``repair(index)``, when given, is run before every query (the automatic,
    bounded repair of :func:`app.core.posts.reconcile.open_index`); the index
    itself never reads post files. SQLite failures surface as ``sqlite3.Error``,
    never as a project error.
    """

    def __init__(self, dd: DataDir, *, repair: Callable[[Index], object] | None = None) -> None:
        self.dd = dd
        self.path = dd.state / DB_NAME
        self.repair = repair
        self.posts_prefix = os.fspath(dd.posts) + os.sep
        self._key = os.fspath(self.path)
        self._id_cache, self._fp_cache = _ID_CACHES.setdefault(self._key, ({}, {}))
        self._sizing = Sizing.of(dd.settings)

    # connection -----------------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        """This thread's connection to this database, shared by every :class:`Index` of it
        in the thread (opened, and the schema checked, on first use; reopened after fork)."""
        pool: dict[str, tuple[int, sqlite3.Connection]] | None = getattr(_POOL, "conns", None)
        if pool is None:
            pool = _POOL.conns = {}
        found = pool.pop(self._key, None)
        if found is None or found[0] != _pid[0]:
            found = (_pid[0], self._open())
            while len(pool) >= _POOL_SIZE:  # least recently used first
                _close_quietly(pool.pop(next(iter(pool)))[1])
        pool[self._key] = found
        return found[1]

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings = self.dd.settings
        c, created = connect(self.path, float(settings["index_busy_timeout"]),
                             sizing=self._sizing)
        if created:
            self.forget_ids()
        return c

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short ``BEGIN IMMEDIATE`` write transaction (waits up to the busy timeout);
        the connection's cache and checkpoint threshold first follow the index's size
        (:class:`.indexschema.Sizing`)."""
        c = self.conn()
        self._sizing.fit(c, self._key)
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")  # a COMMIT that fails may leave the transaction open
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # none left open on the pooled connection
                c.execute("ROLLBACK")
            self.forget_ids()  # ids handed out inside the transaction are void
            raise

    def close(self) -> None:
        """Close this thread's connection to the database (the next use reopens it)."""
        pool = getattr(_POOL, "conns", {})
        found = pool.pop(self._key, None)
        if found is not None and found[0] == _pid[0]:
            found[1].close()

    # fingerprint ids ----------------------------------------------------------------
    def _fp_id(self, c: sqlite3.Connection, fp: str) -> int:
        got = self._id_cache.get(fp)
        if got is None:
            c.execute("INSERT OR IGNORE INTO fps(fp) VALUES (?)", (fp,))
            got = c.execute("SELECT id FROM fps WHERE fp=?", (fp,)).fetchone()[0]
            self._remember(fp, got)
        return got

    def fp_id(self, fp: str) -> int | None:
        """The id of ``fp`` if the index has seen it, else None."""
        got = self._id_cache.get(fp)
        if got is None:
            row = self.conn().execute("SELECT id FROM fps WHERE fp=?", (fp,)).fetchone()
            if row is not None:
                self._remember(fp, got := row[0])
        return got

    def fp_of(self, fp_id: int) -> str:
        """The fingerprint (64 hex) of an id this index handed out (``TypeError`` otherwise)."""
        got = self._fp_cache.get(fp_id)
        if got is None:
            got = self.conn().execute("SELECT fp FROM fps WHERE id=?", (fp_id,)).fetchone()[0]
            self._remember(got, fp_id)
        return got

    def forget_ids(self) -> None:
        """Drop this process's cached fingerprint ids of this database."""
        self._id_cache.clear()
        self._fp_cache.clear()

    def _remember(self, fp: str, fp_id: int) -> None:
        self._id_cache[fp] = fp_id
        self._fp_cache[fp_id] = fp

    def entry(self, row: Sequence[Any]) -> Entry:
        """An :class:`Entry` from a row selected with :data:`COLUMNS`."""
        return Entry(row[1].hex(), self.fp_of(row[3]), row[0], KINDS[row[4]], bool(row[5]),
                     bool(row[6]), bool(row[7]))

    # writing ---------------------------------------------------------------------------
    def add_many(self, posts: Iterable[Post], *, flushed_later: bool = False,
                 before_commit: Callable[[], object] | None = None) -> int:
        """Index verified posts (already durable on disk); returns how many were new.

        One write transaction; raises ``sqlite3.Error`` (nothing indexed) if it fails.
        ``flushed_later``: commit without flushing the log (``synchronous=NORMAL``); the
        caller flushes the file system before it reports the posts (rows that reach the
        disk before the names: their folders marked for the repair's rescan).
        ``before_commit()`` is called last in the transaction (what it raises rolls the rows
        back and is raised here). A batch with deletion or edit records is indexed a post
        at a time, in order (a record acts on the rows before it); any other in bulk
        (:func:`.indexbulk.insert_bulk`: a few statements a batch, not several a post).
        """
        posts, added, now_us = list(posts), 0, time.time_ns() // 1000
        last: dict[int, int] = {}  # author id -> the position it was last given
        c = self.conn()
        if flushed_later:
            c.execute("PRAGMA synchronous=NORMAL")
        try:
            with self.write() as c:
                if any(p.kind == DELETION or p.supersedes for p in posts):
                    for post in posts:
                        added += self._insert(c, post, last, now_us)
                else:
                    added = insert_bulk(c, posts, self._fp_id, last, now_us)
                if flushed_later:  # rescanned whether or not the names reached the disk
                    c.executemany("INSERT OR REPLACE INTO dirs(fp, mtime_ns) VALUES (?, 0)",
                                  [(a,) for a in {p.author for p in posts}])
                if before_commit is not None:
                    before_commit()
        finally:
            if flushed_later:
                c.execute("PRAGMA synchronous=FULL")
        return added

    def _insert(self, c: sqlite3.Connection, post: Post, last: dict[int, int],
                now_us: int) -> int:
        kind, sha, author = post.kind, bytes.fromhex(post.sha1), self._fp_id(c, post.author)
        conv = (bytes.fromhex(conversation_id({post.author, *post.recipients}))
                if kind == "message" else None)
        if tombstones.is_tombstoned(c, sha, author):  # its author deleted it
            return 0
        if author not in last:
            last[author] = c.execute("SELECT max(pos) FROM posts INDEXED BY posts_pos"
                                     " WHERE author=?", (author,)).fetchone()[0] or 0
        pos = max(last[author] + 1, now_us)  # storage order; never below the clock
        cur = c.execute(
            "INSERT OR IGNORE INTO posts(sha, author, created, kind, public, reaction, reshare,"
            " conv, pos) VALUES (?,?,?,?,?,?,?,?,?)",
            (sha, author, post.created, KIND_CODE[kind], not post.recipients,
             post.is_reaction, post.reshared is not None, conv, pos))
        if cur.rowcount == 0:
            return 0
        last[author] = pos
        post_id = cur.lastrowid
        index_text(c, post_id, post)
        for fp in post.recipients:
            c.execute("INSERT OR IGNORE INTO recipients(fp, post) VALUES (?,?)",
                      (self._fp_id(c, fp), post_id))
        for parent in post.parents:
            c.execute("INSERT OR IGNORE INTO replies(parent, post) VALUES (?,?)",
                      (bytes.fromhex(parent), post_id))
        if conv is not None:
            insert_conv(c, conv, {post.author, *post.recipients}, self._fp_id)
        tombstones.index_record(c, post, post_id, author, self.delete_rows)
        return 1

    def remove(self, sha1: str) -> bool:
        """Forget one post (its file is the caller's business); True if it was indexed.

        Raises :class:`BadInput` for a ``sha1`` that is not 40 lowercase hex.
        """
        with self.write() as c:
            return self.delete_rows(c, [bytes.fromhex(names.sha1(sha1))]) > 0

    def delete_rows(self, c: sqlite3.Connection, shas: Iterable[bytes]) -> int:
        """Delete posts (by raw SHA-1) and their recipient and reply rows; returns how many."""
        n = 0
        for sha in shas:
            row = c.execute("DELETE FROM posts WHERE sha=? RETURNING id", (sha,)).fetchone()
            if row is not None:
                c.execute("DELETE FROM recipients WHERE post=?", (row[0],))
                c.execute("DELETE FROM replies WHERE post=?", (row[0],))
                c.execute("DELETE FROM edits WHERE post=?", (row[0],))
                n += 1
        return n

    def file_of(self, entry: Entry) -> Path:
        """The post file of ``entry``: ``posts/<author>/<sha1>`` (it may have vanished)."""
        return self.dd.posts / entry.author / entry.sha1

    def present(self, entries: list[Entry]) -> list[Entry]:
        """The entries whose file still exists; the others are dropped from the index."""
        present: list[Entry] = []
        gone: list[Entry] = []
        exists, base = os.path.exists, self.posts_prefix
        for e in entries:
            (present if exists(f"{base}{e.author}/{e.sha1}") else gone).append(e)
        if gone:
            with self.write() as c:
                self.delete_rows(c, [bytes.fromhex(e.sha1) for e in gone])
        return present

    # reading ---------------------------------------------------------------------------
    def get(self, sha1: str) -> Entry | None:
        """The indexed entry of ``sha1`` (None if unknown or its file vanished).

        Raises :class:`BadInput` for a ``sha1`` that is not 40 lowercase hex.
        """
        self.maybe_reconcile()
        row = self.conn().execute(f"SELECT {COLUMNS} FROM posts p WHERE p.sha=?",
                                  (bytes.fromhex(names.sha1(sha1)),)).fetchone()
        if row is None:
            return None
        found = self.present([self.entry(row)])
        return found[0] if found else None

    def check_limit(self, limit: int) -> int:
        """``limit`` if it is an integer page size from 1 to ``max_page_size``; raises
        :class:`BadInput` (``field`` ``limit``) otherwise."""
        top = self.dd.settings["max_page_size"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= top:
            raise BadInput(f"limit must be between 1 and {top}", field="limit")
        return limit

    def blocked(self) -> list[str]:
        """Fingerprints in ``identities/blocked/``."""
        try:
            found = os.scandir(self.dd.identities / names.BLOCKED)
        except FileNotFoundError:
            return []
        with found:
            return [e.name[:-4] for e in found if e.name.endswith(".pub")
                    and names.FINGERPRINT_RE.fullmatch(e.name[:-4])]

    def page(self, *, authors: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
             limit: int, cursor: str | None = None, exclude_blocked: bool = True,
             hide: Iterable[str] = ()) -> Page:
        """A page of entries, newest first, strictly after ``cursor`` (from the previous page).

        ``authors`` (fingerprints) and ``kinds`` (``post``, ``comment``, ``message``,
        ``profile``) filter; blocked authors (unless ``exclude_blocked`` is off) and those in
        ``hide`` are left out; who may see what is the caller's filter. Raises :class:`BadInput`
        for a bad ``limit``, ``cursor`` or kind, :class:`BadFingerprint` for a bad author.
        """
        self.check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        codes = kind_codes(kinds)
        blocked = (set(self.blocked()) if exclude_blocked else set()) | set(hide)
        self.maybe_reconcile()
        if authors is not None:
            wanted = {names.fingerprint(a, field="authors") for a in authors} - blocked
            ids = [i for i in (self.fp_id(a) for a in sorted(wanted)) if i is not None]
            scopes: list[Scope] = [("posts_author_kind", ("author", "kind"), (i, k))
                      for i in ids for k in codes] if codes is not None else [
                ("posts_author", ("author",), (i,)) for i in ids]
            not_in: list[int] = []
        else:
            not_in = [i for i in (self.fp_id(b) for b in sorted(blocked)) if i is not None]
            scopes = [("posts_kind", ("kind",), (k,)) for k in LISTED_CODES
                      if codes is None or k in codes]
        return self.newest(scopes, not_in, limit, after)

    def newest(self, scopes: list[Scope], not_in: list[int], limit: int,
               after: tuple[int, bytes] | None) -> Page:
        """Merge index ranges (index name, equality columns, values) newest first."""
        items: list[Entry] = []
        while True:
            need = limit + 1 - len(items)
            rows = self._merge_desc(scopes, not_in, need, after)
            present = self.present(rows)
            items.extend(present)
            if len(present) == len(rows) or len(rows) < need:
                break
            after = (rows[-1].created, bytes.fromhex(rows[-1].sha1))
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].cursor if more else None)

    def _merge_desc(self, scopes: list[Scope], not_in: list[int], need: int,
                    after: tuple[int, bytes] | None) -> list[Entry]:
        c = self.conn()
        cursors = []
        for index_name, cols, values in scopes:
            where = [f"p.{col}=?" for col in cols] + [LISTED]
            params: list[Any] = list(values)
            if after is not None:
                where.append("(p.created, p.sha) < (?, ?)")
                params += after
            if not_in:
                where.append(f"p.author NOT IN ({','.join('?' * len(not_in))})")
                params += not_in
            sql = (f"SELECT {COLUMNS} FROM posts p INDEXED BY {index_name}"
                   f" WHERE {' AND '.join(where)}"
                   " ORDER BY p.created DESC, p.sha DESC LIMIT ?")
            cursors.append(c.execute(sql, (*params, need)))
        try:
            merged = heapq.merge(*cursors, key=lambda r: (r[0], r[1]), reverse=True)
            return [self.entry(r) for r in itertools.islice(merged, need)]
        finally:
            for cur in cursors:
                cur.close()

    def feed_reshares(self, owner: str, viewer: str, limit: int) -> list[str]:
        """SHA-1s of ``owner``'s reshares ``viewer`` may receive, newest first, ``limit`` at most"""
        self.maybe_reconcile()
        owner_id, viewer_id = self.fp_id(owner), self.fp_id(viewer)
        rows = [] if owner_id is None else self.conn().execute(
            RESHARES_SEEN_BY, (owner_id, -1 if viewer_id is None else viewer_id, limit))
        return [bytes(r[0]).hex() for r in rows]

    def newest_time(self, author: str) -> int | None:
        """The newest CREATED_TIME (unix seconds) indexed for ``author`` (None if no post).

        Raises :class:`BadFingerprint` for a bad ``author``.
        """
        self.maybe_reconcile()
        author_id = self.fp_id(names.fingerprint(author))
        if author_id is None:
            return None
        row = self.conn().execute("SELECT max(created) FROM posts WHERE author=?",
                                  (author_id,)).fetchone()
        return None if row[0] is None else int(row[0])

    def count(self) -> int:
        """Number of indexed posts (for tools and tests; not an API count)."""
        return int(self.conn().execute("SELECT count(*) FROM posts").fetchone()[0])

    # repair (app.core.posts.reconcile) ------------------------------------------------
    def maybe_reconcile(self) -> None:
        """Run the ``repair`` hook, if any (every query calls this first)."""
        if self.repair is not None:
            self.repair(self)

    def reset(self) -> None:
        """Forget connections and cached ids (after the database file was replaced)."""
        self.close()
        self.forget_ids()


def _close_quietly(c: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        c.close()
