"""Pages that read: the timeline, a thread, conversations."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core.base import names
from ..core.base.errors import BadInput
from ..core.network.syncrun import syncing_now
from ..core.posts.codec import stored_view
from ..core.posts.display import DisplayNames
from ..core.posts.notices import ReadingMark
from ..core.posts.timeline import CONVERSATION_ID_RE, Timeline
from ..core.posts.versions import annotate
from ..core.posts.versions import versions as post_versions
from .auth import dd, own_fingerprints, session_keys
from .compose import compose_form
from .present import card, reply_count
from .site import blp


@blp.get("/")
def home() -> ResponseReturnValue:
    """The timeline, newest first, one page at a time (``?cursor=`` for older posts); posts
    newer than where the owner stopped reading are marked new, with a line where that was."""
    tl = Timeline(dd())
    cursor = request.args.get("cursor") or None
    try:
        page = tl.page(cursor=cursor)
    except BadInput:
        abort(400, "that page link is not valid")
    names = DisplayNames(dd(), timeline=tl)
    mark = ReadingMark(dd()).position()
    posts: list[dict[str, Any]] = []
    divider = None
    for p in (tl.read(e) for e in page.items):
        if p is not None:
            shown = card(annotate(tl.index, stored_view(p)), names,
                         replies=reply_count(tl, p.sha1))
            shown["new"] = mark is not None and (p.created, p.sha1) > mark
            if divider is None and posts and posts[-1]["new"] and not shown["new"]:
                divider = p.sha1
            posts.append(shown)
    any_new = any(p["new"] for p in posts)
    news = None
    if cursor is None and mark is not None and not any_new:
        news = "syncing" if syncing_now(dd()) else "nothing"
    return render_template("home.html", posts=posts, next_cursor=page.next_cursor,
                           divider=divider, news=news,
                           newest=page.items[0].cursor if page.items and cursor is None
                           else None, mark=ReadingMark(dd()).get() if mark else None)


@blp.post("/read")
def mark_timeline_read() -> ResponseReturnValue:
    """Remember that the owner read the timeline down from ``cursor`` (the newest post
    shown); the mark only moves forward."""
    ReadingMark(dd()).set(request.form.get("cursor", ""))
    return redirect(url_for("pages.home"), code=303)


@blp.get("/thread/<sha>")
def thread(sha: str) -> ResponseReturnValue:
    """A post with its replies nested below it, and a reply box."""
    sha1 = names.sha1(sha, field="sha")
    tl = Timeline(dd())
    found = tl.replies(sha1)
    root = tl.read(found.root_entry) if found.root_entry is not None else None
    if root is None and not (found.deleted and found.replies):
        abort(404, f"no post {sha1} on this node")
    names_ = DisplayNames(dd(), timeline=tl)
    replies: list[dict[str, Any]] = []
    for node in found.walk():
        post = tl.read(node.entry)
        if post is not None:
            replies.append({"depth": min(node.depth, 8),
                            "post": card(annotate(tl.index, stored_view(post)), names_)})
    if root is None:  # deleted by its author: the replies of others stay
        return render_template("thread.html", root=None, replies=replies)
    form = compose_form(f"reply-{sha1}", names_, defaults={"reply_to": sha1})
    own = root.author in own_fingerprints()
    return render_template("thread.html", root=card(annotate(tl.index, stored_view(root)),
                                                    names_, replies=len(replies)),
                           replies=replies, form=form, own=own,
                           unlocked=own and root.author in session_keys(),
                           text=t if isinstance(t := root.attributes.get("TEXT"), str) else "")


@blp.get("/versions/<sha>")
def versions(sha: str) -> ResponseReturnValue:
    """Every version of an edited post, oldest first (the earlier text of an "edited" mark)."""
    tl = Timeline(dd())
    found = post_versions(tl.index, names.sha1(sha, field="sha"))
    if found is None:
        abort(404, f"no post {sha} on this node")
    names_ = DisplayNames(dd(), timeline=tl)
    cards = [card(stored_view(p), names_, replies=None)
             for p in (tl.read(e) for e in found.entries) if p is not None]
    return render_template("versions.html", versions=cards)


@blp.get("/chats")
def chats() -> ResponseReturnValue:
    """Private and group conversations, the most recently active first."""
    tl = Timeline(dd())
    names_ = DisplayNames(dd(), timeline=tl)
    rows = [{"id": c.id, "names": [names_(fp) for fp in c.participants],
             "last": card(stored_view(p), names_) if (p := tl.read(c.last)) else None}
            for c in tl.conversations()]
    return render_template("chats.html", chats=rows)


@blp.get("/chats/<cid>")
def chat(cid: str) -> ResponseReturnValue:
    """One conversation as a chat, newest at the bottom, with a box to answer everyone."""
    if not CONVERSATION_ID_RE.fullmatch(cid):
        abort(404, "no such conversation")
    tl = Timeline(dd())
    page = tl.conversation(cid, limit=dd().settings["max_page_size"])
    names_ = DisplayNames(dd(), timeline=tl)
    messages = [card(stored_view(p), names_) for p in (tl.read(e) for e in page.items) if p]
    messages.reverse()
    own = set(own_fingerprints())
    to = ",".join(fp for fp in page.participants if fp not in own)
    form = compose_form(f"chat-{cid}", names_, defaults={"audience": "people", "to": to})
    return render_template("chat.html", cid=cid, messages=messages, form=form,
                           names=[names_(fp) for fp in page.participants])


@blp.get("/keys")
def keys() -> ResponseReturnValue:
    """The keyboard help page (``?`` opens it when JavaScript is on)."""
    return render_template("keys.html")

