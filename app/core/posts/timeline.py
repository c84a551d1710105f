"""Read-side queries over the post index: timeline, threads, conversations, profiles.

Everything here answers from :class:`app.core.posts.index.Index` and reads post files
(through :func:`app.core.posts.codec.decode_post`) only for the details a listing
does not hold (profile fields). There are no counts anywhere: a thread lists
its replies, each flagged when it is only an emoji reaction, and that is all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput, BadPost, NotFound
from ..identity.identities import Identities
from ..identity.mutes import Mutes
from . import records
from .attributes import type_of
from .codec import Post, decode_post
from .index import LISTED, Index
from .listing import COLUMNS, KIND_CODE, Entry, Page, decode_cursor
from .reconcile import open_index
from .versions import versions

CONVERSATION_ID_RE = re.compile(r"[0-9a-f]{32}")
_IN_CHUNK = 500


@dataclass
class ReplyNode:
    """One reply in a thread, with the replies to it (nested without limit)."""

    entry: Entry
    parent: str
    depth: int
    replies: list[ReplyNode] = field(default_factory=list)


@dataclass
class Thread:
    """The replies under the post ``root`` (40 hex): its entry (None if it is not stored
    here, or blocked) and the replies to it, each nested with its own."""

    root: str
    root_entry: Entry | None
    replies: list[ReplyNode]
    versions: list[str] = field(default_factory=list)  # the root's versions, oldest first
    deleted: bool = False  # the root was deleted by its author (its replies stay)

    def walk(self) -> Iterator[ReplyNode]:
        """Every reply, depth first in display order (iterative: any depth)."""
        stack = list(reversed(self.replies))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.replies))


@dataclass(frozen=True)
class Conversation:
    """A message conversation: its ``id`` (32 hex, :func:`index.conversation_id`), the
    sorted ``participants`` (fingerprints) and its newest visible message ``last``."""

    id: str
    participants: list[str]
    last: Entry


@dataclass(frozen=True)
class ConversationPage:
    """One page of a conversation's messages, newest first, with the cursor of the next
    page (None on the last one)."""

    id: str
    participants: list[str]
    items: list[Entry]
    next_cursor: str | None


class Timeline:
    """The read queries of one data directory."""

    def __init__(self, dd: DataDir, index: Index | None = None) -> None:
        self.dd = dd
        self.index = index or open_index(dd)
        self.identities = Identities(dd)

    # the timeline ------------------------------------------------------------------------
    def page(self, *, authors: Iterable[str] | None = None, group: str | None = None,
             kinds: Iterable[str] | None = None, limit: int | None = None,
             cursor: str | None = None) -> Page:
        """Newest first across non-blocked feeds; ``group`` keeps its members only.

        Muted keys (:mod:`app.core.identity.mutes`) are left out unless ``authors`` names
        them. ``limit`` defaults to ``page_size``; ``authors``, ``kinds`` and ``cursor`` as
        for :meth:`Index.page`. Raises :class:`BadName` or :class:`NotFound` for a bad or
        unknown group, :class:`BadFingerprint` for a bad author and :class:`BadInput` for a
        bad limit, cursor or kind.
        """
        hide = Mutes(self.dd).all() if authors is None else set()
        if group is not None:
            members: set[str] = set(self.identities.members(names.group(group, field="group")))
            authors = members if authors is None else {
                names.fingerprint(a, field="authors") for a in authors} & members
        if limit is None:
            limit = self.default_limit()
        return self.index.page(authors=authors, kinds=kinds, limit=limit, cursor=cursor,
                               hide=hide)

    def default_limit(self) -> int:
        """``page_size``, but never more than ``max_page_size``."""
        return int(min(self.dd.settings["page_size"], self.dd.settings["max_page_size"]))

    def read(self, entry: Entry) -> Post | None:
        """The decoded post of an entry; None if its file vanished or no longer decodes."""
        try:
            raw = self.index.file_of(entry).read_bytes()
            return decode_post(raw, max_bytes=self.dd.settings["max_post_bytes"])
        except (FileNotFoundError, BadPost):
            return None

    def _blocked_ids(self) -> list[int]:
        return [i for i in (self.index.fp_id(b) for b in self.index.blocked()) if i is not None]

    # threads -------------------------------------------------------------------------------
    def replies(self, sha1: str) -> Thread:
        """The replies under ``sha1``, nested without limit, oldest first at each level.

        The replies to every version of an edited post hang under its newest version,
        the root; a root deleted by its author has ``deleted`` set and its replies stay.
        Blocked authors' replies (and what hangs under them) are left out. Raises
        :class:`BadInput` for a ``sha1`` that is not 40 lowercase hex.
        """
        names.sha1(sha1)
        index = self.index
        index.maybe_reconcile()
        blocked = set(self._blocked_ids())
        chain = versions(index, sha1)
        shas = [e.sha1 for e in chain.entries] if chain is not None else \
            records.deleted_together(index, sha1)
        top: list[ReplyNode] = []
        nodes: dict[str, list[ReplyNode]] = {sha: top for sha in shas}
        seen = set(shas)
        level, depth = list(shas), 1
        while level:
            found = self._children(level, blocked)
            level = []
            for parent, entry in found:
                if entry.sha1 in seen:
                    continue
                seen.add(entry.sha1)
                node = ReplyNode(entry, parent, depth)
                nodes[parent].append(node)
                nodes[entry.sha1] = node.replies
                level.append(entry.sha1)
            depth += 1
        if chain is None:
            return Thread(sha1, None, top, [], records.deleted_by_author(index, sha1))
        root = chain.latest
        top.sort(key=lambda n: (n.entry.created, n.entry.sha1))
        for node in top:
            node.parent = root.sha1
        return Thread(root.sha1, root, top, shas)

    def _children(self, parents: list[str], blocked: set[int]) -> list[tuple[str, Entry]]:
        c = self.index.conn()
        rows: list[tuple[str, Any]] = []
        for start in range(0, len(parents), _IN_CHUNK):
            chunk = [bytes.fromhex(p) for p in parents[start:start + _IN_CHUNK]]
            rows += [(r[0].hex(), r[1:]) for r in c.execute(
                f"SELECT r.parent, {COLUMNS} FROM replies r JOIN posts p ON p.id = r.post"
                f" WHERE r.parent IN ({','.join('?' * len(chunk))}) AND {LISTED}", chunk)
                if r[4] not in blocked]
        rows.sort(key=lambda pr: (pr[1][0], pr[1][1]))
        entries = [self.index.entry(r) for _, r in rows]
        present = {e.sha1 for e in self.index.present(entries)}
        return [(parent, e) for (parent, _), e in zip(rows, entries, strict=True)
                if e.sha1 in present]

    # conversations -----------------------------------------------------------------------------
    def conversations(self, viewer_fps: Iterable[str] | None = None) -> list[Conversation]:
        """Message conversations (grouped by participant set) that any viewer is in,
        the most recently active first. Viewers default to this node's own identities.

        Raises :class:`BadFingerprint` for a bad viewer.
        """
        viewers = self._viewers(viewer_fps)
        self.index.maybe_reconcile()
        c = self.index.conn()
        ids = [i for i in (self.index.fp_id(v) for v in viewers) if i is not None]
        if not ids:
            return []
        convs = c.execute(
            "SELECT DISTINCT c.id, c.members FROM conv_members m JOIN convs c ON c.id = m.conv"
            f" WHERE m.fp IN ({','.join('?' * len(ids))})", ids).fetchall()
        out, blocked = [], self._blocked_ids()
        for conv, members in convs:
            page = self._conversation_page(conv, 1, None, blocked)
            if page.items:
                out.append(Conversation(conv.hex(), members.split(","), page.items[0]))
        out.sort(key=lambda cv: (cv.last.created, cv.last.sha1), reverse=True)
        return out

    def conversation(self, conversation_id: str, *, limit: int | None = None,
                     cursor: str | None = None) -> ConversationPage:
        """The messages of one conversation, newest first, paginated like the timeline.

        ``limit`` defaults to ``page_size``. Raises :class:`BadInput` for an id that is not
        32 lowercase hex or a bad limit or cursor, and :class:`NotFound` for an unknown
        conversation. Who may read it is the caller's check.
        """
        if not isinstance(conversation_id, str) or not CONVERSATION_ID_RE.fullmatch(
                conversation_id):
            raise BadInput("a conversation id is 32 lowercase hexadecimal characters",
                           field="id")
        conv = bytes.fromhex(conversation_id)
        limit = self.index.check_limit(self.default_limit() if limit is None else limit)
        self.index.maybe_reconcile()
        row = self.index.conn().execute("SELECT members FROM convs WHERE id=?",
                                        (conv,)).fetchone()
        if row is None:
            raise NotFound(f"no conversation {conversation_id}", field="id")
        page = self._conversation_page(conv, limit, cursor, self._blocked_ids())
        return ConversationPage(conversation_id, row[0].split(","), page.items,
                                page.next_cursor)

    def _conversation_page(self, conv: bytes, limit: int, cursor: str | None,
                           blocked: list[int]) -> Page:
        after = decode_cursor(cursor) if cursor is not None else None
        return self.index.newest([("posts_conv", ("conv",), (conv,))], blocked, limit, after)

    def _viewers(self, viewer_fps: Iterable[str] | None) -> list[str]:
        if viewer_fps is None:
            return self.identities.own_fingerprints()
        return [names.fingerprint(v, field="viewer") for v in viewer_fps]

    # profiles ----------------------------------------------------------------------------------
    def current_profile(self, fp: str, viewer: str | None) -> dict[str, Any] | None:
        """The newest profile post by ``fp`` visible to ``viewer`` (None: public only).

        Returns ``{"fingerprint", "sha1", "created", "public", "attributes"}`` or None if
        there is none (or ``fp`` is blocked). Raises :class:`BadFingerprint`.
        """
        return self.profile_for(fp, [] if viewer is None else [viewer])

    def profile_for(self, fp: str, viewers: Iterable[str]) -> dict[str, Any] | None:
        """The newest profile by ``fp`` that is public or addressed to any of ``viewers``:
        a version an edit replaced never counts, then the greatest ``(CREATED_TIME, SHA-1)``
        wins, so two nodes holding the same posts show the same profile.

        Same shape as :meth:`current_profile`. Raises :class:`BadFingerprint` for a bad
        ``fp`` or viewer.
        """
        names.fingerprint(fp)
        self.index.maybe_reconcile()
        vids = [i for i in (self.index.fp_id(names.fingerprint(v, field="viewer"))
                            for v in viewers) if i is not None]
        author = self.index.fp_id(fp)
        if author is None or fp in self.index.blocked():
            return None
        addressed = (f" OR EXISTS (SELECT 1 FROM recipients r WHERE r.post = p.id AND"
                     f" r.fp IN ({','.join('?' * len(vids))}))") if vids else ""
        cur = self.index.conn().execute(
            f"SELECT {COLUMNS} FROM posts p INDEXED BY posts_author_kind"
            f" WHERE p.author=? AND p.kind=? AND (p.public{addressed}) AND {LISTED}"
            " ORDER BY p.created DESC, p.sha DESC", (author, KIND_CODE["profile"], *vids))
        try:
            for row in cur:
                entry = self.index.entry(row)
                post = self.read(entry)
                if post is not None:
                    return {"fingerprint": fp, "sha1": entry.sha1, "created": entry.created,
                            "public": entry.public, "attributes": dict(post.attributes)}
        finally:
            cur.close()
        return None

    def known_profiles(self) -> Iterator[dict[str, Any]]:
        """Current profiles (as this node's own identities see them) of known identities."""
        own = self.identities.own_fingerprints()
        blocked = set(self.index.blocked())
        for fp in self.identities.all_fingerprints():
            if fp not in blocked:
                profile = self.profile_for(fp, own)
                if profile is not None:
                    yield profile

    def contacts_book(self) -> list[dict[str, Any]]:
        """Names, phones, e-mails, workplaces and birthdates from current profiles.

        One card per identity: ``{"fingerprint", "name", "phones", "emails", "workplaces",
        "birthdate", "profile_sha1"}``, sorted by name (case-folded), then fingerprint.
        """
        book = [_card(p) for p in self.known_profiles()]
        book.sort(key=lambda card: ((card["name"] or "").casefold(), card["fingerprint"]))
        return book

    def birthdays(self, *, today: dt.date | None = None) -> list[dict[str, Any]]:
        """Known identities with a birthdate, the next birthday first.

        Each ``{"fingerprint", "name", "birthdate", "next" (ISO date), "days_until"}``
        counted from ``today``, the viewer's date (:func:`viewer_today`; default: the node's
        local date); 29 February falls on the 28th in common years.
        """
        day = today or dt.date.today()
        out = []
        for card in self.contacts_book():
            born = _parse_date(card["birthdate"])
            if born is not None:
                nxt = _next_birthday(born, day)
                out.append({"fingerprint": card["fingerprint"], "name": card["name"],
                            "birthdate": card["birthdate"], "next": nxt.isoformat(),
                            "days_until": (nxt - day).days})
        out.sort(key=lambda b: (b["days_until"], (b["name"] or "").casefold(), b["fingerprint"]))
        return out


def viewer_today(today: str | None = None, tz: str | None = None) -> dt.date:
    """The viewer's date: ``today`` (ISO ``YYYY-MM-DD``) if given, else the date now in time
    zone ``tz`` (an IANA name such as ``Europe/Berlin``), else in the node's local zone.

    Raises :class:`BadInput` (field ``today`` or ``tz``) for a malformed date, an unknown
    zone, or both given.
    """
    if today is not None and tz is not None:
        raise BadInput("give today or tz, not both", field="tz")
    if today is not None:
        day = _parse_date(today)
        if day is None:
            raise BadInput(f"today must be a date like 2026-02-28, not {today[:40]!r}",
                           field="today")
        return day
    if tz is None:
        return dt.date.today()
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"unknown time zone {tz[:60]!r} (use a name like Europe/Berlin)",
                       field="tz") from None
    return dt.datetime.now(zone).date()


def _card(profile: dict[str, Any]) -> dict[str, Any]:
    by_type: dict[str, list[str]] = {}
    for key in sorted(profile["attributes"]):
        value = profile["attributes"][key]
        if isinstance(value, str):
            by_type.setdefault(type_of(key), []).append(value)
    first = {t: values[0] for t, values in by_type.items()}
    return {"fingerprint": profile["fingerprint"], "name": first.get("PROFILENAME"),
            "phones": by_type.get("PHONE", []), "emails": by_type.get("EMAIL", []),
            "workplaces": by_type.get("WORKPLACE", []), "birthdate": first.get("BIRTHDATE"),
            "profile_sha1": profile["sha1"]}


def _parse_date(text: str | None) -> dt.date | None:
    if text is None or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _next_birthday(born: dt.date, today: dt.date) -> dt.date:
    day = _birthday_in(born, today.year)
    return day if day >= today else _birthday_in(born, today.year + 1)


def _birthday_in(born: dt.date, year: int) -> dt.date:
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year: celebrate on the 28th
        return dt.date(year, 2, 28)
