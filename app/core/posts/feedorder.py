"""The owner's storage order: positions, the index's epoch, and the feed queries over them.

Normative in ``docs/protocol.md`` ("Positions and epochs", "Who gets what"). Every
post the index holds has a *position* (``posts.pos``): per author, increasing in
the order this node stored it, whatever its ``CREATED_TIME`` and whichever path
stored it (authoring, import, sync, a file found by the repair), and never below
the clock in microseconds when it was stored, so an index restored from a backup
never hands out a position it used before. The numbering belongs to the index's
*epoch* (a random integer in ``meta``): a rebuilt index numbers everything anew
and gets a new epoch, which tells followers to compare sets instead.

A serving node lists the posts an asker may receive strictly after a position,
in position order (:func:`feed_page`), or only their positions and SHA-1
prefixes (:func:`feed_summary`, for a follower comparing what it holds).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

from ..base import names
from ..base.errors import BadInput
from .index import Index
from .listing import COLUMNS
from .visibility import FEED_WHERE, feed_params

EPOCH_KEY = "epoch"
MAX_POSITION = 2**53 - 1   # positions and epochs stay exact in every JSON implementation
PREFIX_BYTES = 8           # SHA-1 bytes a summary entry carries

# Posts by an author (id) a viewer may receive after a position, in position order: the
# one visibility rule, :data:`.visibility.FEED_WHERE` with :func:`.visibility.feed_params`.
_VISIBLE_AFTER = ("FROM posts p INDEXED BY posts_pos WHERE p.author=? AND p.pos > ?"
                  f" AND {FEED_WHERE} ORDER BY p.pos LIMIT ?")
_PAGE = f"SELECT p.pos, p.sha {_VISIBLE_AFTER}"
# the epoch first, as a row whose position is NULL (a position never is), then the page
_EPOCH_AND_PAGE = (f"SELECT NULL, value FROM meta WHERE key='{EPOCH_KEY}'"
                   f" UNION ALL SELECT * FROM ({_PAGE})")


def epoch(index: Index) -> int:
    """The epoch of ``index``'s positions (1 to 2^53-1), made at random on first use
    after the index was created or rebuilt. Raises ``sqlite3.Error`` on failure."""
    c = index.conn()
    row = c.execute("SELECT value FROM meta WHERE key=?", (EPOCH_KEY,)).fetchone()
    if row is not None:
        return int(row[0])
    with index.write() as w:
        w.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                  (EPOCH_KEY, 1 + secrets.randbelow(MAX_POSITION)))
        return int(w.execute("SELECT value FROM meta WHERE key=?", (EPOCH_KEY,)).fetchone()[0])


def _check(index: Index, owner: str, viewer: str, after: int, limit: int) -> None:
    index.check_limit(limit)
    names.fingerprint(owner, field="owner")
    names.fingerprint(viewer, field="viewer")
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_POSITION:
        raise BadInput("after must be a position from 0 to 2^53-1", field="after")


def _rows(index: Index, owner: str, viewer: str, after: int, need: int, shares: bool,
          *, with_epoch: bool = False) -> list[Any]:
    """(position, SHA-1) rows of the page; ``with_epoch``: led by a ``(None, epoch)`` row
    read by the same statement (one read transaction, one snapshot), absent if the
    index has no epoch yet or no row names ``owner``."""
    owner_id = index.fp_id(owner)
    if owner_id is None:
        return []
    rule = feed_params(same_identity=viewer == owner, viewer=viewer, shares=shares)
    sql = _EPOCH_AND_PAGE if with_epoch else _PAGE
    return index.conn().execute(sql, (owner_id, after, *rule, need)).fetchall()


def _epoch_of(index: Index, rows: list[Any]) -> tuple[int, list[Any]]:
    """(epoch, page rows) of :func:`_rows` ``with_epoch``; the epoch read (or made) on its
    own when the rows do not lead with it."""
    if rows and rows[0][0] is None:  # where SQLite puts it (a compound has no set order)
        return int(rows[0][1]), rows[1:]
    lead = [r[1] for r in rows if r[0] is None]
    if lead:
        return int(lead[0]), [r for r in rows if r[0] is not None]
    return epoch(index), rows


def feed_page(index: Index, owner: str, viewer: str, *, after: int, limit: int,
              comment_viewers: frozenset[str] = frozenset()
              ) -> tuple[list[tuple[int, str]], bool]:
    """Posts by ``owner`` that ``viewer`` may receive at positions greater than ``after``,
    in position order: (up to ``limit`` (position, sha1) pairs, more to come).

    ``viewer`` gets what :mod:`.visibility` (the one rule, ``docs/protocol.md``, Who gets
    what) lets it: ``viewer`` in ``comment_viewers`` is in the comment-sharing group,
    ``viewer`` == ``owner`` another node of the same identity (everything). Rows whose
    file vanished are dropped.
    Raises :class:`BadInput` for a bad ``limit`` or ``after`` and
    :class:`BadFingerprint` for a bad ``owner`` or ``viewer``.
    """
    found, more = feed_files(index, owner, viewer, after=after, limit=limit,
                             comment_viewers=comment_viewers)
    return [(position, sha) for position, sha, _ in found], more


def feed_files(index: Index, owner: str, viewer: str, *, after: int, limit: int,
               comment_viewers: frozenset[str] = frozenset(),
               known_size: Callable[[str], int | None] | None = None
               ) -> tuple[list[tuple[int, str, int]], bool]:
    """:func:`feed_page` with each post file's size in bytes: (position, sha1, size)
    triples, for a server that reads the files next: the size ``known_size(path)`` gives
    (a server's copy of a file it served lately), else one ``stat`` of the file. The row
    past the page, which only makes ``more`` true, is not looked at on disk.

    Every post of ``owner``'s feed is ``owner``'s, so its file is
    ``posts/<owner>/<sha1>``; a row whose file is found gone is dropped from the index
    (:meth:`Index.present`; the automatic repair drops those of files removed behind the
    index's back too, within ``reconcile_interval_ms``). Raises as :func:`feed_page` does.
    """
    return epoch_and_files(index, owner, viewer, after=after, limit=limit,
                           comment_viewers=comment_viewers, known_size=known_size)[1:]


def epoch_and_files(index: Index, owner: str, viewer: str, *, after: int, limit: int,
                    comment_viewers: frozenset[str] = frozenset(),
                    known_size: Callable[[str], int | None] | None = None
                    ) -> tuple[int, list[tuple[int, str, int]], bool]:
    """(:func:`epoch`, then :func:`feed_files`'s page and ``more``), the epoch read by the
    page's own statement: what a serving node sends. A page that reads on past files found
    gone reads the epoch with each statement, and starts again if the index was renumbered
    in between (a rebuild), so every position sent is one of the epoch named. Raises as
    :func:`feed_page` does."""
    _check(index, owner, viewer, after, limit)
    index.maybe_reconcile()
    while True:
        found = _files(index, owner, viewer, after, limit, viewer in comment_viewers,
                       known_size)
        if found is not None:
            return found


def _files(index: Index, owner: str, viewer: str, after: int, limit: int, shares: bool,
           known_size: Callable[[str], int | None] | None
           ) -> tuple[int, list[tuple[int, str, int]], bool] | None:
    """:func:`epoch_and_files` past its checks; None if the epoch changed between two of
    its statements."""
    folder = f"{index.posts_prefix}{owner}{os.sep}"
    items: list[tuple[int, str, int]] = []
    at_epoch, rows = _epoch_of(index, _rows(index, owner, viewer, after, limit + 1, shares,
                                            with_epoch=True))
    while True:
        need = limit + 1 - len(items)
        gone = []
        for position, sha in rows:
            if len(items) == limit:  # the row past the page only says there is more:
                items.append((position, sha.hex(), 0))  # its file is not looked at
                break
            name = sha.hex()
            size = None if known_size is None else known_size(folder + name)
            if size is None:
                try:
                    size = os.stat(folder + name).st_size
                except FileNotFoundError:
                    gone.append(sha)
                    continue
            items.append((position, name, size))
        if gone:
            _drop_gone(index, gone)
        if not gone or len(rows) < need:
            break
        after = rows[-1][0]
        now_epoch, rows = _epoch_of(index, _rows(index, owner, viewer, after,
                                                 limit + 1 - len(items), shares,
                                                 with_epoch=True))
        if now_epoch != at_epoch:  # renumbered since the first statement: all again
            return None
    return at_epoch, items[:limit], len(items) > limit


def _drop_gone(index: Index, shas: list[bytes]) -> None:
    """Let the index drop the rows of post files found missing (:meth:`Index.present`)."""
    conn = index.conn()
    rows = [conn.execute(f"SELECT {COLUMNS} FROM posts p WHERE p.sha=?", (sha,)).fetchone()
            for sha in shas]
    index.present([index.entry(r) for r in rows if r is not None])


def feed_summary(index: Index, owner: str, viewer: str, *, after: int, limit: int,
                 comment_viewers: frozenset[str] = frozenset()
                 ) -> tuple[list[tuple[int, bytes]], bool]:
    """Like :func:`feed_page`, but (position, first :data:`PREFIX_BYTES` bytes of the
    SHA-1) pairs, without looking at the files: what a follower compares with what it
    holds. ``limit`` is not capped by ``max_page_size`` (the caller bounds it). Raises
    :class:`BadInput` for a bad ``limit`` or ``after`` and :class:`BadFingerprint` for a
    bad ``owner`` or ``viewer``."""
    return epoch_and_summary(index, owner, viewer, after=after, limit=limit,
                             comment_viewers=comment_viewers)[1:]


def epoch_and_summary(index: Index, owner: str, viewer: str, *, after: int, limit: int,
                      comment_viewers: frozenset[str] = frozenset()
                      ) -> tuple[int, list[tuple[int, bytes]], bool]:
    """(:func:`epoch`, then :func:`feed_summary`'s entries and ``more``), read by one
    statement. Raises :class:`BadInput` and :class:`BadFingerprint` as
    :func:`feed_summary` does."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadInput("limit must be a positive integer", field="limit")
    _check(index, owner, viewer, after, 1)
    index.maybe_reconcile()
    at_epoch, rows = _epoch_of(index, _rows(index, owner, viewer, after, limit + 1,
                                            viewer in comment_viewers, with_epoch=True))
    return (at_epoch, [(int(r[0]), bytes(r[1][:PREFIX_BYTES])) for r in rows[:limit]],
            len(rows) > limit)
