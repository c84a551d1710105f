"""The whole of an author's feed, for another node of the same identity (docs/protocol.md,
"Who gets what": the row for an asker that is the owner itself).

A node that holds an identity's key serves that identity's other nodes every post
the identity wrote, private messages and addressed comments included, so that
each node can serve the whole feed to followers. Keyset pagination over the
author's ``(created, sha)`` index, oldest first, as :meth:`Index.feed_page`.
"""

from __future__ import annotations

from ..base import names
from .index import Index
from .listing import COLUMNS, Entry

_SQL = (f"SELECT {COLUMNS} FROM posts p INDEXED BY posts_author WHERE p.author=?"
        " AND (p.created, p.sha) > (?, ?) ORDER BY p.created, p.sha LIMIT ?")


def whole_page(index: Index, owner: str, *, after_time: int, after_sha: str | None,
               limit: int) -> tuple[list[str], bool]:
    """Every post by ``owner`` strictly after ``(after_time, after_sha or "")``, oldest
    first: (up to ``limit`` sha1s, more to come). :class:`BadInput` for a bad ``limit``
    or ``after_sha``, :class:`BadFingerprint` for a bad ``owner``."""
    index.check_limit(limit)
    names.fingerprint(owner, field="owner")
    after = (int(after_time), b"" if after_sha is None else bytes.fromhex(names.sha1(
        after_sha, field="after_sha")))
    index.maybe_reconcile()
    owner_id = index.fp_id(owner)
    if owner_id is None:
        return [], False
    items: list[Entry] = []
    while True:
        need = limit + 1 - len(items)
        rows = [index.entry(r) for r in index.conn().execute(_SQL, (owner_id, *after, need))]
        present = index.present(rows)
        items.extend(present)
        if len(present) == len(rows) or len(rows) < need:
            break
        after = (rows[-1].created, bytes.fromhex(rows[-1].sha1))
    return [e.sha1 for e in items[:limit]], len(items) > limit


_ADDRESSEES = ("SELECT DISTINCT f.fp FROM posts p INDEXED BY posts_author"
               " JOIN recipients r ON r.post=p.id JOIN fps f ON f.id=r.fp WHERE p.author=?"
               " ORDER BY f.fp")


def addressees(index: Index, owner: str) -> list[str]:
    """The sorted fingerprints ``owner``'s posts are addressed to (messages, addressed
    comments and profiles). :class:`BadFingerprint` for a bad ``owner``."""
    names.fingerprint(owner, field="owner")
    index.maybe_reconcile()
    owner_id = index.fp_id(owner)
    if owner_id is None:
        return []
    return [str(r[0]) for r in index.conn().execute(_ADDRESSEES, (owner_id,))]
