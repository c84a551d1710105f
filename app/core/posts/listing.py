"""What index listings return: kinds, one indexed post, a page, page cursors, conversation ids.

Plain values shared by :mod:`app.core.posts.index` (which produces them) and its
readers (timeline, the admin API, the CLI); docs/protocol.md "Post index" and
"Pagination" describe the cursor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..base.encoding import b64d, b64e
from ..base.errors import BadInput
from ..base.strictjson import MAX_SAFE_INTEGER

KINDS = ("post", "comment", "message", "profile", "deletion")  # index codes 0-4
DELETION_CODE = 4  # deletion records: in the index for the feed, never in a listing
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
COLUMNS = "p.created, p.sha, p.id, p.author, p.kind, p.public, p.reaction, p.reshare"
# An author's reshares a viewer may receive, newest first: (author id, viewer id, limit).
RESHARES_SEEN_BY = (
    "SELECT p.sha FROM posts p INDEXED BY posts_author WHERE p.author=? AND p.reshare"
    " AND (p.public OR EXISTS (SELECT 1 FROM recipients r WHERE r.fp=? AND r.post=p.id))"
    " ORDER BY p.created DESC, p.sha DESC LIMIT ?")
_CURSOR_RE = re.compile(r"(-?[0-9]{1,16}):([0-9a-f]{40})")


@dataclass(frozen=True)
class Entry:
    """One indexed post, as listings return it (no content: read the file for that)."""

    sha1: str
    author: str
    created: int
    kind: str
    public: bool
    is_reaction: bool
    reshare: bool

    @property
    def cursor(self) -> str:
        """The opaque page cursor of this entry's position (see :func:`encode_cursor`)."""
        return encode_cursor(self.created, self.sha1)


@dataclass(frozen=True)
class Page:
    """One page of a listing: ``items`` newest first, and the cursor of the next page
    (None on the last one)."""

    items: list[Entry]
    next_cursor: str | None


def encode_cursor(created: int, sha1: str) -> str:
    """An opaque page cursor for the position ``(created, sha1)``: unix seconds and a
    40-hex SHA-1, as base64url text."""
    return b64e(f"{created}:{sha1}".encode("ascii"))


def decode_cursor(cursor: str) -> tuple[int, bytes]:
    """``(created, 20 raw SHA-1 bytes)`` from a cursor made by :func:`encode_cursor`.

    Raises :class:`BadInput` (``field`` ``cursor``) for anything else.
    """
    try:
        text = b64d(cursor, what="cursor").decode("ascii")
    except (BadInput, UnicodeDecodeError):
        text = ""
    match = _CURSOR_RE.fullmatch(text)
    if match is None or abs(int(match[1])) > MAX_SAFE_INTEGER:  # bounded before SQLite
        raise BadInput("cursor is not one this node gave out", field="cursor")
    return int(match[1]), bytes.fromhex(match[2])


def conversation_id(participants: Iterable[str]) -> str:
    """Stable id of a participant set: 32 hex of SHA-256 over the sorted fingerprints."""
    joined = ",".join(sorted(set(participants)))
    return hashlib.sha256(joined.encode("ascii")).hexdigest()[:32]


def kind_codes(kinds: Iterable[str] | None) -> list[int] | None:
    """Sorted kind codes of ``kinds`` (names from :data:`KINDS`); None for all kinds.

    Raises :class:`BadInput` (field ``kinds``) for an unknown kind name.
    """
    if kinds is None:
        return None
    codes = set()
    for k in kinds:
        if k not in KIND_CODE or KIND_CODE[k] == DELETION_CODE:
            raise BadInput(f"kind must be one of {', '.join(KINDS[:DELETION_CODE])}",
                           field="kinds")
        codes.add(KIND_CODE[k])
    return sorted(codes)
