"""Admin routes built from posts: conversations, profiles, birthdays, the contacts book."""

from __future__ import annotations

from typing import Any

from ..core.base.errors import NotFound
from ..core.posts.attributes import describe
from ..core.posts.codec import stored_view as view
from ..core.posts.timeline import Timeline, viewer_today
from ..schemas import posts as s
from ..web.api import Blueprint
from .names import display_names, named_view
from .posts import dd

blp = Blueprint("social", __name__, url_prefix="",
                description="Views built from posts (no counts anywhere)")


def _entry(tl: Timeline, entry: Any) -> dict[str, Any] | None:
    post = tl.read(entry)
    return named_view(view(post)) if post is not None else None


@blp.route("/conversations")
@blp.response(200)
def conversations() -> dict[str, Any]:
    """Private and group messages grouped by participant set, most recent first."""
    tl = Timeline(dd())
    return {"conversations": [
        {"id": c.id, "participants": c.participants, "last": _entry(tl, c.last),
         "participant_names": [display_names()(fp) for fp in c.participants]}
        for c in tl.conversations()]}


@blp.route("/conversations/<id>")
@blp.arguments(s.ConversationPath, location="view_args")
@blp.arguments(s.PageArgs, location="query")
@blp.response(200)
def conversation(path: dict[str, str], args: dict[str, Any], id: str) -> dict[str, Any]:
    """The messages of one conversation, newest first."""
    tl = Timeline(dd())
    page = tl.conversation(path["id"], limit=args.get("limit"), cursor=args.get("cursor"))
    return {"id": page.id, "participants": page.participants,
            "participant_names": [display_names()(fp) for fp in page.participants],
            "messages": [m for m in (_entry(tl, e) for e in page.items) if m],
            "next_cursor": page.next_cursor}


@blp.route("/profiles/<fp>")
@blp.arguments(s.FingerprintArg, location="view_args")
@blp.response(200)
def profile(path: dict[str, str], fp: str) -> dict[str, Any]:
    """The current profile of an identity, as this node's own identities may see it."""
    tl = Timeline(dd())
    found = tl.profile_for(path["fp"], tl.identities.own_fingerprints())
    if found is None:
        raise NotFound(f"no profile of {path['fp']} here", field="fp")
    found["attributes"] = {k: describe(k, v) for k, v in sorted(found["attributes"].items())}
    return found


@blp.route("/birthdays")
@blp.arguments(s.TodayQuery, location="query")
@blp.response(200)
def birthdays(query: dict[str, str]) -> dict[str, Any]:
    """Known identities with a birthdate, the next birthday first, counted from the viewer's
    date (``today`` or ``tz``; default the node's local date)."""
    day = viewer_today(query.get("today"), query.get("tz"))
    return {"today": day.isoformat(), "birthdays": Timeline(dd()).birthdays(today=day)}


@blp.route("/contacts-book")
@blp.response(200)
def contacts_book() -> dict[str, Any]:
    """Names, phones, e-mails and birthdays from the current profiles of known identities."""
    return {"contacts": Timeline(dd()).contacts_book()}
