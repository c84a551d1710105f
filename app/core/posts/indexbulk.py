"""The post index's bulk insert: a batch of posts in a few prepared statements.

:meth:`app.core.posts.index.Index.add_many` calls :func:`insert_bulk` inside its write
transaction for a batch without deletion or edit records (those go one by one, in
order): one lookup of the SHA-1s already held or tombstoned, row ids handed out here
(the write lock is held), then one ``executemany`` per table. Ingest's parse is reused:
every column comes from the verified :class:`Post`'s attributes worked out when it was
decoded, never from reading its attributes again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from .codec import Post
from .listing import KIND_CODE, conversation_id
from .searchtext import searchable_text

FpId = Callable[[sqlite3.Connection, str], int]


def insert_bulk(c: sqlite3.Connection, posts: list[Post], fp_id: FpId, last: dict[int, int],
                now_us: int) -> int:
    """Insert the rows of ``posts`` (no deletion or edit records among them) inside the
    write transaction ``c``; returns how many were new. ``fp_id(c, fp)`` gives an
    author's id, ``last`` maps author ids to the position last given (filled here),
    ``now_us`` is the clock in microseconds (positions never go below it). Posts already
    held, or tombstoned for their author, are skipped. Raises ``sqlite3.Error``."""
    shas = [bytes.fromhex(p.sha1) for p in posts]
    authors = [fp_id(c, p.author) for p in posts]
    skip = _held(c, "SELECT sha FROM posts WHERE sha IN", shas)
    gone = {(bytes(r[0]), r[1]) for r in _chunked(
        c, "SELECT sha, author FROM tombstones WHERE sha IN", shas)}
    next_id = (c.execute("SELECT max(id) FROM posts").fetchone()[0] or 0) + 1
    rows, texts, recipients, replies = [], [], [], []
    for post, sha, author in zip(posts, shas, authors, strict=True):
        if sha in skip or (sha, author) in gone:
            continue
        skip.add(sha)
        if author not in last:
            last[author] = c.execute("SELECT max(pos) FROM posts INDEXED BY posts_pos"
                                     " WHERE author=?", (author,)).fetchone()[0] or 0
        pos = last[author] = max(last[author] + 1, now_us)
        post_id, next_id = next_id, next_id + 1
        conv = None
        if post.kind == "message":
            members = {post.author, *post.recipients}
            conv = bytes.fromhex(conversation_id(members))
            insert_conv(c, conv, members, fp_id)
        rows.append((post_id, sha, author, post.created, KIND_CODE[post.kind],
                     not post.recipients, post.is_reaction, post.reshared is not None,
                     conv, pos))
        text = searchable_text(post)
        if text:
            texts.append((post_id, text))
        recipients += [(fp_id(c, fp), post_id) for fp in post.recipients]
        replies += [(bytes.fromhex(parent), post_id) for parent in post.parents]
    c.executemany("INSERT INTO posts(id, sha, author, created, kind, public, reaction,"
                  " reshare, conv, pos) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    c.executemany("INSERT INTO posts_fts(rowid, body) VALUES (?, ?)", texts)
    c.executemany("INSERT OR IGNORE INTO recipients(fp, post) VALUES (?,?)", recipients)
    c.executemany("INSERT OR IGNORE INTO replies(parent, post) VALUES (?,?)", replies)
    return len(rows)


def insert_conv(c: sqlite3.Connection, conv: bytes, members: set[str], fp_id: FpId) -> None:
    """The conversation row ``conv`` of ``members`` (fingerprints) and its member rows,
    unless it is held already."""
    cur = c.execute("INSERT OR IGNORE INTO convs(id, members) VALUES (?,?)",
                    (conv, ",".join(sorted(members))))
    if cur.rowcount:
        c.executemany("INSERT OR IGNORE INTO conv_members(fp, conv) VALUES (?,?)",
                      [(fp_id(c, fp), conv) for fp in members])


def _chunked(c: sqlite3.Connection, select: str, keys: list[bytes]) -> Iterator[Any]:
    """Rows of ``select`` followed by ``(?, ...)`` over ``keys``, 500 keys a statement."""
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        yield from c.execute(f"{select} ({','.join('?' * len(part))})", part)


def _held(c: sqlite3.Connection, select: str, keys: list[bytes]) -> set[bytes]:
    return {bytes(r[0]) for r in _chunked(c, select, keys)}
