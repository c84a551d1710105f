"""What full-text search indexes of a post (:mod:`app.core.posts.search` queries it).

Table ``posts_fts`` holds one row per post with text, its rowid the post's row id in
``posts``; :func:`index_text` adds it inside the index's write transaction as the post
is indexed (:meth:`app.core.posts.index.Index.add_many`, so a rebuild fills it too).
The indexed text is every string attribute a person wrote (text, links, profile fields,
unknown string attributes), never media, addressing, times or reshared posts.
"""

from __future__ import annotations

import sqlite3

from .attributes import TYPES, is_media, type_of
from .codec import CREATED, Post

UNINDEXED_TYPES = frozenset({"TIME", "FINGERPRINT", "POSTSHA", "POST", "BIN", "PROFILEPICTURE"})
_SKIPPED = UNINDEXED_TYPES | {name for name in TYPES if is_media(f"X_{name}")}  # one look-up


def searchable_text(post: Post) -> str:
    """The text of ``post`` that search finds: its string attributes (not media,
    addressing, times or reshared posts), in key order, one per line."""
    return "\n".join(value for key, value in sorted(post.attributes.items())
                     if isinstance(value, str) and key != CREATED
                     and type_of(key) not in _SKIPPED)


def index_text(c: sqlite3.Connection, post_id: int | None, post: Post) -> None:
    """Add the search row of ``post`` (row id ``post_id``) inside the index's write
    transaction ``c``; nothing for a post without text."""
    text = searchable_text(post)
    if text and post_id is not None:
        c.execute("INSERT INTO posts_fts(rowid, body) VALUES (?, ?)", (post_id, text))
