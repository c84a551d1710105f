"""The whole of an author's feed, for another node of the same identity (docs/protocol.md,
"Who gets what": the row for an asker that is the owner itself).

A node that holds an identity's key serves that identity's other nodes every post
the identity wrote, private messages and addressed comments included, so that
each node can serve the whole feed to followers: the visibility rule
(:mod:`.visibility`) lets them have everything, in the owner's storage order
(:func:`.feedorder.feed_page`). Here: whom those posts are addressed to.
"""

from __future__ import annotations

from ..base import names
from .index import Index

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
