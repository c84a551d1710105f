"""Who may receive what from an owner's feed: the one rule, written once.

``docs/protocol.md``, Who gets what (the table there is this rule). For a post of the
owner's feed and an asker:

======================================  =============================================
the post                                who receives it
======================================  =============================================
public (no ``_FINGERPRINT``): posts,    every asker, strangers included
public profiles, public reshares
addressed (``_FINGERPRINT``): private   the addressees (pinned askers only)
and group messages, profiles for some
comment on a public post                its addressees, and the owner's
(every parent held here and public)     comment-sharing group
comment on a non-public or unknown      its addressees only, never the group
post
deletion record                         the deleted post's audience: it carries its
                                        addressing, and names a deleted comment's
                                        parents (``_PARENTSHA``) only when the comment
                                        went to the comment-sharing group (every
                                        parent public): the group receives it then
edit (``_SUPERSEDES``)                  as the post it is (it keeps the addressing)
anything, asker is the owner itself     everything (another node of the same identity)
anything, asker blocked here            nothing (an ordinary empty page)
======================================  =============================================

:data:`FEED_WHERE` is that rule as a SQL condition over ``posts p`` of the index;
:func:`feed_params` gives its parameters. The feed (:func:`.feedorder.feed_page` and
:func:`.feedorder.feed_summary`) serves through it and nothing else; a blocked asker
is refused before (``feeds.serve_feed``).
"""

from __future__ import annotations

from typing import Any

from .listing import DELETION_CODE, KIND_CODE

_COMMENT = KIND_CODE["comment"]

# Parameters, in order: same identity (0/1), the asker's fingerprint (64 hex; its id is
# looked up once by SQLite, in the same statement: none if the index never saw it), the
# asker is in the owner's comment-sharing group (0/1).
FEED_WHERE = (
    "(? OR p.public"
    " OR EXISTS (SELECT 1 FROM recipients r WHERE r.fp=(SELECT id FROM fps WHERE fp=?)"
    " AND r.post=p.id)"
    # a deletion record naming parents: its author found the deleted comment shared
    f" OR (? AND ((p.kind={DELETION_CODE}"
    "  AND EXISTS (SELECT 1 FROM replies r0 WHERE r0.post=p.id))"
    # comment sharing covers only comments whose every parent is stored here and public:
    # a reply in a private conversation stays in it
    f" OR (p.kind={_COMMENT} AND NOT EXISTS (SELECT 1 FROM replies r LEFT JOIN posts q"
    "  ON q.sha=r.parent WHERE r.post=p.id AND (q.id IS NULL OR NOT q.public))))))")

def feed_params(*, same_identity: bool, viewer: str, shares: bool) -> tuple[Any, ...]:
    """The parameters of :data:`FEED_WHERE` for one asker: whether it is another node of
    the owner's own identity, its fingerprint (64 lowercase hex; one the index never saw
    is addressed nothing) and whether it is in the comment-sharing group."""
    return (same_identity, viewer, shares)
