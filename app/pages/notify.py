"""Notifications (replies to own posts, messages, contacts' first posts), the unread count
every page's header shows, and "mark all read" (:mod:`app.core.posts.notices`)."""

from __future__ import annotations

import logging
from typing import Any

from flask import g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core.base import names
from ..core.base.errors import BadInput, CorruptFile
from ..core.identity.identities import Identities
from ..core.identity.mutes import Mutes
from ..core.network.contacts import Contacts
from ..core.posts.codec import stored_view
from ..core.posts.display import DisplayNames
from ..core.posts.notices import Notice, NoticeState, notices
from ..core.posts.timeline import Timeline
from .auth import dd
from .present import card, reply_count
from .site import blp

log = logging.getLogger("diwan.pages")
LABELS = {"reply": "replied to your post", "message": "wrote to you",
          "first": "posted for the first time"}


_CACHE: dict[str, tuple[tuple[Any, ...], list[Notice]]] = {}  # data dir -> (key, listed)


def _state_key(tl: Timeline) -> tuple[Any, ...]:
    """What the notifications depend on, cheaply: the newest index row, and the mtimes of
    the files and folders that say who is own, a contact, muted or blocked."""
    newest = tl.index.conn().execute(  # two subqueries: each is one index lookup
        "SELECT (SELECT max(id) FROM posts), (SELECT min(id) FROM posts)").fetchone()
    paths = (dd().identities, dd().identities / names.BLOCKED, dd().state / "contacts.json",
             dd().state / "muted.json")
    return (*newest, *(p.stat().st_mtime_ns if p.exists() else None for p in paths))


def listed(tl: Timeline) -> list[Notice]:
    """The latest ``web_notifications`` notifications of every own identity; first posts
    only of the ``web_notifications`` contacts added last (the new ones). Kept per worker
    until the index gains a post or who is own, a contact, muted or blocked changes
    (every page's header asks for them)."""
    key = _state_key(tl)
    cached = _CACHE.get(str(dd().root))
    if cached is not None and cached[0] == key:
        return cached[1]
    limit = min(dd().settings["web_notifications"], dd().settings["max_page_size"])
    newest = sorted(Contacts(dd()).list(), key=lambda c: c.added, reverse=True)[:limit]
    found = notices(tl.index, Identities(dd()).own_fingerprints(),
                    [c.fingerprint for c in newest], limit=limit, hide=Mutes(dd()).all())
    _CACHE[str(dd().root)] = (key, found)
    return found


def header() -> dict[str, Any]:
    """Template values of every page: ``unread``, the count of unread notifications."""
    if getattr(g, "web_session", None) is None:
        return {"unread": 0}
    try:
        return {"unread": len(NoticeState(dd()).unread(listed(Timeline(dd()))))}
    except CorruptFile as exc:  # the header must not take every page down with it
        log.warning("no unread count in the header: %s", exc.message)
        return {"unread": 0}


blp.context_processor(header)


@blp.get("/notifications")
def notifications() -> ResponseReturnValue:
    """The notifications, latest arrival first, the unread ones marked."""
    tl = Timeline(dd())
    names_ = DisplayNames(dd(), timeline=tl)
    found = listed(tl)
    seen = NoticeState(dd()).seen()
    rows = [{"kind": n.kind, "label": LABELS[n.kind], "unread": n.entry.sha1 not in seen,
             "post": card(stored_view(p), names_, replies=reply_count(tl, p.sha1))}
            for n in found if (p := tl.read(n.entry))]
    return render_template("notifications.html", rows=rows,
                           upto=max((n.order for n in found), default=0))


@blp.post("/notifications/read")
def mark_read() -> ResponseReturnValue:
    """Mark every notification up to the newest one the page showed (``upto``) read."""
    try:
        upto = int(request.form.get("upto", ""))
    except ValueError:
        raise BadInput("upto must be an integer", field="upto") from None
    NoticeState(dd()).mark_read(listed(Timeline(dd())), upto)
    return redirect(url_for("pages.notifications"), code=303)
