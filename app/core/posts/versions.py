"""Versions of an edited post: the chains that ``*_SUPERSEDES`` attributes make.

``docs/protocol.md``, Deletion and edit records. Every version is kept; the
newest is the one listings show, marked edited, with the earlier ones one step
away. The versions of a post are every held post by the same author linked to it
through edits, either way; the newest is the greatest ``(CREATED_TIME, SHA-1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..base import names
from .index import Index
from .listing import COLUMNS, Entry
from .tombstones import chain_rows


@dataclass(frozen=True)
class Versions:
    """The held versions of one post, oldest first (``entries``), by ``(created, sha1)``."""

    entries: list[Entry]

    @property
    def latest(self) -> Entry:
        """The newest version (the one a listing shows)."""
        return self.entries[-1]

    @property
    def edited(self) -> bool:
        """True if there is more than one version."""
        return len(self.entries) > 1

    def view(self) -> dict[str, Any]:
        """``{"edited", "latest" (40 hex), "versions": [{"sha1", "created"}, oldest first]}``:
        the fields the admin API and the CLI add to a post view."""
        return {"edited": self.edited, "latest": self.latest.sha1,
                "versions": [{"sha1": e.sha1, "created": e.created} for e in self.entries]}


def versions(index: Index, sha1: str) -> Versions | None:
    """The versions of the held post ``sha1`` (40 hex); None if it is not held.

    Raises :class:`BadInput` for a malformed SHA-1.
    """
    entry = index.get(names.sha1(sha1))
    if entry is None:
        return None
    author = index.fp_id(entry.author)
    if author is None:
        return Versions([entry])
    c = index.conn()
    shas = chain_rows(c, [bytes.fromhex(sha1)], author)
    rows = [c.execute(f"SELECT {COLUMNS} FROM posts p WHERE p.sha=?", (sha,)).fetchone()
            for sha in shas]
    found = index.present([index.entry(r) for r in rows if r is not None]) or [entry]
    return Versions(sorted(found, key=lambda e: (e.created, e.sha1)))


def view_of(index: Index, sha1: str) -> dict[str, Any]:
    """:meth:`Versions.view` of ``sha1``, or a single-version view if it is not held."""
    found = versions(index, sha1)
    if found is None:
        return {"edited": False, "latest": sha1, "versions": []}
    return found.view()
