"""Notifications and the reading position: what the owner has not seen yet.

A notification is a post by someone else that is a reply to an own post, a post
addressed to an own identity (a message, or a reply in a conversation), or a
contact's first post this node holds. They are listed newest *arrival* first (the
index row id grows as posts are indexed, so a post synced late with an old
CREATED_TIME still comes first); blocked and hidden (muted) authors are left out.

Read state lives in ``state/notifications.json`` (a locked, atomic
:class:`StateFile`, 0600): ``seen`` holds the SHA-1s of notifications marked read,
pruned to those still listed, so it never grows beyond ``web_notifications``
entries; a rebuilt index (new row ids) loses nothing. ``state/reading.json`` holds
where the owner stopped reading the timeline (a page cursor).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput
from ..base.statefile import StateFile
from .index import LISTED, Index
from .listing import COLUMNS, KIND_CODE, Entry, decode_cursor

REPLY, MESSAGE, FIRST = "reply", "message", "first"


@dataclass(frozen=True)
class Notice:
    """One notification: ``kind`` (``reply``, ``message`` or ``first``), the post's
    ``entry`` and ``order``, its arrival rank (the index row id; larger is later)."""

    kind: str
    entry: Entry
    order: int


def _ids(index: Index, fps: Iterable[str]) -> list[int]:
    return [i for i in (index.fp_id(fp) for fp in sorted(set(fps))) if i is not None]


def _marks(ids: list[int]) -> str:
    return ",".join("?" * len(ids)) or "NULL"


def notices(index: Index, own: Iterable[str], contacts: Iterable[str], *, limit: int,
            hide: Iterable[str] = ()) -> list[Notice]:
    """The ``limit`` latest notifications for the ``own`` identities (fingerprints):
    replies to their posts, posts addressed to them, and the first post of each of
    ``contacts``; newest arrival first, one per post (a reply wins over a message).

    Authors that are own, blocked or in ``hide`` are left out. Raises
    :class:`BadInput` for a ``limit`` outside 1..``max_page_size``.
    """
    index.check_limit(limit)
    index.maybe_reconcile()
    own_ids = _ids(index, own)
    out_ids = _ids(index, [*own, *index.blocked(), *hide])
    if not own_ids:
        return []
    not_out = f"p.author NOT IN ({_marks(out_ids)})"
    queries = [
        (REPLY, f"SELECT {COLUMNS} FROM posts q INDEXED BY posts_author"
                " JOIN replies r ON r.parent = q.sha JOIN posts p ON p.id = r.post"
                f" WHERE q.author IN ({_marks(own_ids)}) AND {not_out} AND {LISTED}"
                " ORDER BY p.id DESC LIMIT ?", [*own_ids, *out_ids, limit]),
        (MESSAGE, f"SELECT {COLUMNS} FROM recipients r JOIN posts p ON p.id = r.post"
                  f" WHERE r.fp IN ({_marks(own_ids)}) AND p.kind != ? AND {not_out}"
                  f" AND {LISTED}"
                  " ORDER BY p.id DESC LIMIT ?",
         [*own_ids, KIND_CODE["profile"], *out_ids, limit]),
    ]
    contact_ids = [i for i in _ids(index, contacts) if i not in out_ids]
    if contact_ids:
        queries.append((FIRST, f"SELECT {COLUMNS} FROM posts p WHERE p.id IN (SELECT"
                               " (SELECT x.id FROM posts x INDEXED BY posts_author"
                               " WHERE x.author = f.id AND x.kind != ?"
                               " ORDER BY x.created, x.sha LIMIT 1) FROM fps f"
                               f" WHERE f.id IN ({_marks(contact_ids)}))"
                               " ORDER BY p.id DESC LIMIT ?",
                        [KIND_CODE["profile"], *contact_ids, limit]))
    found: dict[str, Notice] = {}
    c = index.conn()
    for kind, sql, params in queries:
        for row in c.execute(sql, params).fetchall():
            entry = index.entry(row)
            found.setdefault(entry.sha1, Notice(kind, entry, int(row[2])))
    listed = sorted(found.values(), key=lambda n: n.order, reverse=True)[:limit]
    present = {e.sha1 for e in index.present([n.entry for n in listed])}
    return [n for n in listed if n.entry.sha1 in present]


class NoticeState:
    """Which notifications were marked read (``state/notifications.json``)."""

    def __init__(self, dd: DataDir) -> None:
        self.file = StateFile(dd, "notifications")

    def seen(self) -> set[str]:
        """SHA-1s of the notifications marked read."""
        seen = self.file.read().get("seen", [])
        return {s for s in seen if isinstance(s, str) and names.SHA1_RE.fullmatch(s)} \
            if isinstance(seen, list) else set()

    def unread(self, listed: list[Notice]) -> list[Notice]:
        """The notifications of ``listed`` not marked read."""
        seen = self.seen()
        return [n for n in listed if n.entry.sha1 not in seen]

    def mark_read(self, listed: list[Notice], upto: int) -> int:
        """Mark every notification of ``listed`` up to arrival rank ``upto`` (the newest the
        owner was shown: later arrivals stay unread) read; forget marks of notifications
        no longer listed. Returns how many became read."""
        keep = {n.entry.sha1 for n in listed}
        newly = {n.entry.sha1 for n in listed if n.order <= upto}
        with self.file.update() as data:
            old = data.get("seen", [])
            old = {s for s in old if isinstance(s, str)} if isinstance(old, list) else set()
            data["seen"] = sorted((old & keep) | newly)
        return len(newly - old)


class ReadingMark:
    """Where the owner stopped reading the timeline (``state/reading.json``): the page
    cursor of the newest post they marked as read, or None."""

    def __init__(self, dd: DataDir) -> None:
        self.file = StateFile(dd, "reading")

    def get(self) -> str | None:
        """The stored cursor (None if none, or if it is not a valid cursor)."""
        cursor = self.file.read().get("home")
        try:
            return cursor if isinstance(cursor, str) and decode_cursor(cursor) else None
        except BadInput:
            return None

    def position(self) -> tuple[int, str] | None:
        """The stored position as ``(created, sha1)``, or None."""
        cursor = self.get()
        if cursor is None:
            return None
        created, sha = decode_cursor(cursor)
        return created, sha.hex()

    def set(self, cursor: str) -> None:
        """Store ``cursor`` (raises :class:`BadInput` if it is not a page cursor); a
        position older than the stored one is ignored (the mark only moves forward)."""
        new = decode_cursor(cursor)
        with self.file.update() as data:
            old = data.get("home")
            try:
                if isinstance(old, str) and decode_cursor(old) >= new:
                    return
            except BadInput:
                pass
            data["home"] = cursor
