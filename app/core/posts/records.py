"""Deletion and edit records, and posts deleted locally: what makes a deletion stick.

``docs/protocol.md``, Deletion and edit records. A **deletion record** is a post of
kind ``deletion`` (``*_DELETES`` attributes naming SHA-1s, addressed with the deleted
post's ``*_FINGERPRINT`` attributes, a deleted comment's parents as ``*_PARENTSHA``).
It acts only on posts by its own author: indexing it records a tombstone
``(SHA-1, author)`` and drops the rows of those posts and of every version of them;
ingest then deletes their files and refuses those SHA-1s by that author from any
source, so nobody can delete (or pre-delete) someone else's post. An **edit** is an
ordinary post with one ``*_SUPERSEDES`` attribute naming an earlier version by the
same author; both versions are kept (:mod:`.versions` reads the chains).

A post the owner removes here that it did not write leaves no record: its SHA-1 goes
to ``state/local_deletions.json`` (``{"<sha1>": "<author>"}``), which ingest consults
too, so no sync, ordinary or full, brings it back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadPost, Reason
from ..base.fsio import remove_quiet
from ..base.statefile import StateFile, read_cached
from .attributes import type_of
from .codec import DELETION, Post
from .index import Index
from .tombstones import chain_rows

LOCAL_DELETIONS = "local_deletions"
_RECORD_TYPES = frozenset({"TIME", "DELETES", "FINGERPRINT", "PARENTSHA"})


def _bad(message: str) -> BadPost:
    return BadPost(message, reason=Reason.BAD_RECORD, field="post")


def check_shape(post: Post) -> None:
    """The shape rules of records (``docs/protocol.md``, Deletion and edit records):
    a deletion record holds only ``_TIME``, ``_DELETES``, ``_FINGERPRINT`` and
    ``_PARENTSHA`` attributes and never names itself; ``_PARENTSHA`` appears only in a
    deletion record; an edit has exactly one ``_SUPERSEDES``, not its own SHA-1.

    Raises :class:`BadPost` (``bad_record``).
    """
    types = post.types
    if post.kind == DELETION:
        extra = types - _RECORD_TYPES
        if extra:
            raise _bad(f"a deletion record holds only CREATED_TIME, _DELETES, _FINGERPRINT and "
                       f"_PARENTSHA attributes, not {sorted(extra)[0]}")
    elif "PARENTSHA" in types:
        raise _bad("_PARENTSHA belongs in a deletion record only")
    if "SUPERSEDES" in types and sum(type_of(k) == "SUPERSEDES" for k in post.attributes) > 1:
        raise _bad("an edit supersedes exactly one earlier version")
    if post.sha1 in post.deletes or post.sha1 in post.supersedes:
        raise _bad("a record cannot name itself")


def check_targets(index: Index, post: Post) -> None:
    """A record naming a post held here must be by that post's author (``bad_record``)."""
    for sha in (*post.deletes, *post.supersedes):
        row = index.conn().execute("SELECT author FROM posts WHERE sha=?",
                                   (bytes.fromhex(sha),)).fetchone()
        if row is not None and index.fp_of(row[0]) != post.author:
            raise _bad(f"{sha} is not {post.author}'s post: only its author can delete or "
                       "edit it")


def screen(dd: DataDir, where: object, posts: list[Post], *, strict: bool = False
           ) -> tuple[list[Post], list[tuple[Post, str]]]:
    """Ingest's step 9 (``docs/protocol.md``, Acceptance rules) for verified ``posts``:
    returns those kept and those dropped with their reason (``bad_record``, ``deleted``);
    with ``strict`` the first dropped raises its :class:`BadPost` instead. ``where`` is
    the ingest's index (tombstones and targets are looked up if it is an :class:`Index`)."""
    index = where if isinstance(where, Index) else None
    gone = refused(dd, index, posts)
    kept: list[Post] = []
    dropped: list[tuple[Post, str]] = []
    for post in posts:
        try:
            check_shape(post)
            if index is not None:
                check_targets(index, post)
            if post.sha1 in gone:
                raise BadPost(f"{post.sha1} was deleted on this node; it is not stored again",
                              reason=Reason.DELETED, field="post")
            kept.append(post)
        except BadPost as exc:
            if strict:
                raise
            dropped.append((post, exc.reason))
    return kept, dropped


def refused(dd: DataDir, index: Index | None, posts: Iterable[Post]) -> set[str]:
    """The SHA-1s among ``posts`` this node refuses: deleted by a record of their own
    author (a tombstone in ``index``), or deleted here by the owner (local deletions)."""
    posts = list(posts)
    local = local_deletions(dd)
    out = {p.sha1 for p in posts if p.sha1 in local} if local else set()
    if index is not None and posts:  # one look-up for the batch, not one per post
        c, wanted = index.conn(), None
        shas = list({bytes.fromhex(p.sha1): None for p in posts})
        for start in range(0, len(shas), 500):
            part = shas[start:start + 500]
            for sha, author in c.execute("SELECT sha, author FROM tombstones WHERE sha IN"
                                         f" ({','.join('?' * len(part))})", part):
                if wanted is None:  # only when a tombstone matches
                    wanted = {(p.sha1, p.author) for p in posts}
                key = (bytes(sha).hex(), index.fp_of(author))
                if key in wanted:
                    out.add(key[0])
    return out


def deleted_by_author(index: Index, sha1: str, author: str | None = None) -> bool:
    """True if a deletion record deleted ``sha1`` (40 hex) here: by ``author`` when given
    (a reshare knows its inner post's author), else by any author (a thread whose root
    is gone does not know it; the post is not held then either way)."""
    sql = "SELECT 1 FROM tombstones WHERE sha=?"
    args: list[Any] = [bytes.fromhex(names.sha1(sha1))]
    if author is not None:
        author_id = index.fp_id(author)
        if author_id is None:
            return False
        sql, args = sql + " AND author=?", [*args, author_id]
    return index.conn().execute(sql + " LIMIT 1", args).fetchone() is not None


def public_parent(index: Index, sha1: str) -> bool:
    """True if the post ``sha1`` is held here and public, or was deleted by a record held
    here that is public (the record has the deleted post's audience)."""
    sha = bytes.fromhex(names.sha1(sha1))
    c = index.conn()
    row = c.execute("SELECT public FROM posts WHERE sha=?", (sha,)).fetchone()
    if row is None:
        row = c.execute("SELECT r.public FROM tombstones t JOIN posts r ON r.id = t.record"
                        " WHERE t.sha=? ORDER BY r.public LIMIT 1", (sha,)).fetchone()
    return row is not None and bool(row[0])


def deleted_together(index: Index, sha1: str) -> list[str]:
    """The SHA-1s the deletion record(s) that deleted ``sha1`` removed with it (its other
    versions), ``sha1`` first; just ``[sha1]`` if no record deleted it."""
    rows = index.conn().execute(
        "SELECT DISTINCT o.sha FROM tombstones t JOIN tombstones o ON o.record = t.record"
        " WHERE t.sha=?", (bytes.fromhex(names.sha1(sha1)),)).fetchall()
    return [sha1, *sorted({bytes(r[0]).hex() for r in rows} - {sha1})]


def targets(index: Index, post: Post) -> list[str]:
    """The SHA-1s a deletion record removes here: what it names and every held version
    of those by its author (read before it is indexed)."""
    found = set(post.deletes)
    try:
        author = index.fp_id(post.author)
        if author is not None:
            found |= {s.hex() for s in chain_rows(
                index.conn(), [bytes.fromhex(s) for s in post.deletes], author)}
    except sqlite3.Error:  # the named posts still go; the index repairs itself
        pass
    return sorted(found)


def doomed(where: object, posts: Iterable[Post]) -> list[tuple[str, list[str]]]:
    """``(author, SHA-1s)`` the deletion records among ``posts`` remove (:func:`targets`
    when ``where`` is an :class:`Index`, else just what they name), read before indexing."""
    return [(p.author, targets(where, p) if isinstance(where, Index) else list(p.deletes))
            for p in posts if p.deletes]


def remove_files(dd: DataDir, found: Iterable[tuple[str, Iterable[str]]]) -> None:
    """Delete the files of each ``(author, SHA-1s)`` (their media live inside them)."""
    for author, shas in found:
        folder = dd.posts / names.fingerprint(author)
        for sha in shas:
            remove_quiet(folder / names.sha1(sha))


# local deletions ----------------------------------------------------------------------

def local_deletions(dd: DataDir) -> dict[str, Any]:
    """``{sha1: author}`` of posts the owner deleted here (re-read only when it changes)."""
    return read_cached(dd, LOCAL_DELETIONS)


def forget(dd: DataDir, index: Index, author: str, sha1: str) -> None:
    """Remove ``author``'s post ``sha1`` from this node for good: remembered first (so a
    sync running meanwhile cannot bring it back), then its file and index rows."""
    with StateFile(dd, LOCAL_DELETIONS).update() as data:
        data[names.sha1(sha1)] = names.fingerprint(author)
    remove_files(dd, [(author, [sha1])])
    index.remove(sha1)


def finish_forgotten(dd: DataDir, index: Index) -> list[str]:
    """Finish removals a crash interrupted: :func:`forget` remembers a post first, so a
    kill before its file went leaves a file that is remembered as deleted. Removes each
    such file and its index rows; returns their SHA-1s. Run when a node starts
    (the scheduler). Raises ``OSError`` only if a file cannot be removed."""
    done = []
    for sha1, author in local_deletions(dd).items():
        if (dd.posts / names.fingerprint(author) / names.sha1(sha1)).exists():
            remove_files(dd, [(author, [sha1])])
            index.remove(sha1)
            done.append(sha1)
    return done
