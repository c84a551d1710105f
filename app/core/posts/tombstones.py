"""The index side of deletion and edit records: tombstones, edit rows, version chains.

Called by :class:`app.core.posts.index.Index` inside its write transaction
(:mod:`.records` is the rest: checks at ingest, local deletions, removing files).
``docs/protocol.md``, Deletion and edit records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

from .codec import DELETION, Post


def is_tombstoned(c: sqlite3.Connection, sha: bytes, author_id: int) -> bool:
    """True if a record by ``author_id`` deleted the post ``sha`` (20 raw bytes)."""
    return c.execute("SELECT 1 FROM tombstones WHERE sha=? AND author=?",
                     (sha, author_id)).fetchone() is not None


def index_record(c: sqlite3.Connection, post: Post, post_id: int | None, author_id: int,
                 delete_rows: Callable[[sqlite3.Connection, Iterable[bytes]], int]) -> None:
    """Index what ``post`` records: an edit's ``edits`` row; a deletion record's
    tombstones, and the rows of the deleted posts by the same author and of all their
    versions are dropped."""
    for old in post.supersedes:
        c.execute("INSERT OR IGNORE INTO edits(old, post) VALUES (?,?)",
                  (bytes.fromhex(old), post_id))
    if post.kind != DELETION:
        return
    doomed = chain_rows(c, [bytes.fromhex(s) for s in post.deletes], author_id)
    for sha in {*doomed, *(bytes.fromhex(s) for s in post.deletes)}:
        c.execute("INSERT OR IGNORE INTO tombstones(sha, author, record) VALUES (?,?,?)",
                  (sha, author_id, post_id))
    delete_rows(c, doomed)


def chain_rows(c: sqlite3.Connection, start: list[bytes], author_id: int) -> list[bytes]:
    """Every held post by ``author_id`` linked to ``start`` (raw SHA-1s) through edits,
    both ways, ``start`` included when held."""
    seen: set[bytes] = set()
    todo = list(start)
    while todo:
        sha = todo.pop()
        if sha in seen:
            continue
        row = c.execute("SELECT id FROM posts WHERE sha=? AND author=?",
                        (sha, author_id)).fetchone()
        if row is None:
            continue
        seen.add(sha)
        todo += [r[0] for r in c.execute("SELECT old FROM edits WHERE post=?", (row[0],))]
        todo += [bytes(r[0]) for r in c.execute(
            "SELECT p.sha FROM edits e JOIN posts p ON p.id=e.post WHERE e.old=?"
            " AND p.author=?", (sha, author_id))]
    return sorted(seen)
