"""Versions of an edited post: the chains that ``*_SUPERSEDES`` attributes make.

``docs/protocol.md``, Deletion and edit records. Every version is kept; the
newest is the one listings show, marked edited, with the earlier ones one step
away. The versions of a post are every held post by the same author linked to it
through edits, either way; the newest is the one furthest along the edits (of two
edits of one version, the greater ``(CREATED_TIME, SHA-1)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..base import names
from . import records
from .index import Index
from .listing import COLUMNS, Entry
from .tombstones import chain_rows


@dataclass(frozen=True)
class Versions:
    """The held versions of one post, oldest first (``entries``): in edit order (each
    after the version it supersedes), forks by ``(created, sha1)``."""

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
    found = {e.sha1: e for e in index.present([index.entry(r) for r in rows if r is not None])}
    if not found:
        return Versions([entry])
    older = {sha: [bytes(r[0]).hex() for r in c.execute(
        "SELECT e.old FROM edits e JOIN posts p ON p.id = e.post WHERE p.sha=?",
        (bytes.fromhex(sha),))] for sha in found}
    return Versions(sorted(found.values(), key=_order(older)))


def _order(older: dict[str, list[str]]) -> Callable[[Entry], tuple[int, int, str]]:
    """Sort key: edit steps from the first version, then ``(created, sha1)`` (forks);
    iterative, so a chain of any length is fine."""
    depth: dict[str, int] = {}
    for start in older:
        stack = [start]
        while stack:
            sha = stack[-1]
            prev = [o for o in older.get(sha, []) if o in older]
            todo = [o for o in prev if o not in depth and o not in stack]
            if sha in depth:
                stack.pop()
                continue
            if todo:
                stack.extend(todo)
                continue
            depth[sha] = 1 + max((depth[o] for o in prev if o in depth), default=-1)
            stack.pop()
    return lambda e: (depth.get(e.sha1, 0), e.created, e.sha1)


def view_of(index: Index, sha1: str) -> dict[str, Any]:
    """:meth:`Versions.view` of ``sha1``, or a single-version view if it is not held."""
    found = versions(index, sha1)
    if found is None:
        return {"edited": False, "latest": sha1, "versions": []}
    return found.view()


def annotate(index: Index, view: dict[str, Any]) -> dict[str, Any]:
    """Add to a post view (:func:`codec.stored_view`) what edits and deletions mean here,
    in place: ``edited``, ``latest`` and ``versions`` (:meth:`Versions.view`), and
    ``deleted_by_author: True`` on a reshared post (at any depth) whose author deleted
    it (the reshare keeps its signed copy; clients show "deleted by its author")."""
    view.update(view_of(index, view["sha1"]))
    _mark_inner(index, view)
    return view


def _mark_inner(index: Index, view: dict[str, Any]) -> None:
    for item in view.get("attributes", {}).values():
        inner = item.get("post") if isinstance(item, dict) else None
        if isinstance(inner, dict):
            inner["deleted_by_author"] = records.deleted_by_author(
                index, inner["sha1"], inner["author"])
            _mark_inner(index, inner)
