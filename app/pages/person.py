"""A person's page: their profile as this node sees it, their posts, and the actions on
them (name, group, block, mute). Forms post back here with ``back=person``."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core.base import names
from ..core.base.errors import BadInput
from ..core.identity.identities import Identities
from ..core.identity.mutes import Mutes
from ..core.identity.petnames import Petnames, resolve, short
from ..core.network.contacts import Contacts
from ..core.network.views import contact_view
from ..core.posts.codec import stored_view
from ..core.posts.display import DisplayNames
from ..core.posts.timeline import Timeline
from .auth import dd
from .present import card, cards
from .site import blp

BACK_PAGES = {"person", "people", "groups"}
LABELS = {"PROFILENAME": "Name", "BIRTHDATE": "Born", "WORKPLACE": "Works at", "PHONE": "Phone",
          "EMAIL": "E-mail", "PROFILEPICTURE": "Picture", "TEXT": "About", "URL": "Link"}


def back_to(fp: str | None = None) -> ResponseReturnValue:
    """Redirect (303) to where a form came from: ``back`` is one of :data:`BACK_PAGES`
    (never a URL: no open redirect); the person page needs ``fp``."""
    back = request.form.get("back", "people")
    if back == "person" and fp is not None:
        return redirect(url_for("pages.person", fp=fp), code=303)
    return redirect(url_for("pages.groups" if back == "groups" else "pages.people"), code=303)


def _profile(tl: Timeline, fp: str, own: list[str], names_: DisplayNames) -> dict[str, Any] | None:
    found = tl.profile_for(fp, own)
    entry = tl.index.get(found["sha1"]) if found else None
    post = tl.read(entry) if entry is not None else None
    return card(stored_view(post), names_, replies=None) if post is not None else None


@blp.get("/people/<fp>")
def person(fp: str) -> ResponseReturnValue:
    """One key's page: profile, posts (``?cursor=`` for older ones), actions."""
    fp = names.fingerprint(fp, field="fp")
    ids = Identities(dd())
    if not ids.exists(fp):
        abort(404, f"this node does not know the key {short(fp)}")
    tl = Timeline(dd())
    names_ = DisplayNames(dd(), timeline=tl)
    try:
        page = tl.page(authors=[fp], cursor=request.args.get("cursor") or None)
    except BadInput:
        abort(400, "that page link is not valid")
    posts = cards(tl, [tl.read(e) for e in page.items], names_)
    contact = Contacts(dd()).find(fp)
    groups = [g for g in ids.groups() if g != names.BLOCKED]
    return render_template(
        "person.html", fp=fp, name=names_(fp), petname=Petnames(dd()).get(fp) or "",
        own=ids.is_own(fp), blocked=ids.is_blocked(fp), muted=Mutes(dd()).is_muted(fp),
        contact=contact_view(dd(), contact, names_) if contact else None,
        groups=groups, member_of=[g for g in groups if fp in ids.members(g)],
        profile=_profile(tl, fp, ids.own_fingerprints(), names_), labels=LABELS, posts=posts,
        next_cursor=page.next_cursor)


@blp.post("/people/mute")
def mute() -> ResponseReturnValue:
    """Mute (``action=mute``: hidden from the timeline, not blocked) or unmute a key."""
    fp = resolve(dd(), request.form.get("fingerprint", ""))
    action = request.form.get("action")
    if action == "mute":
        Mutes(dd()).mute(fp)
    elif action == "unmute":
        Mutes(dd()).unmute(fp)
    else:
        raise BadInput("action must be mute or unmute", field="action")
    return back_to(fp)


@blp.post("/people/groups/member")
def group_member() -> ResponseReturnValue:
    """Add (``action=add``) a key to a group, or remove it (``action=remove``)."""
    fp = resolve(dd(), request.form.get("fingerprint", ""))
    group = names.group(request.form.get("group", ""), field="group")
    if group == names.BLOCKED:
        raise BadInput("use block and unblock for the blocked group", field="group")
    action = request.form.get("action")
    if action == "add":
        Identities(dd()).add_member(group, fp)
    elif action == "remove":
        Identities(dd()).remove_member(group, fp)
    else:
        raise BadInput("action must be add or remove", field="action")
    return back_to(fp)
