"""The groups page: create, rename, delete groups and see their members (membership is
changed through ``/people/groups/member``, :mod:`.person`)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core.base import names
from ..core.identity.groups import rename_group
from ..core.identity.identities import Identities
from ..core.identity.petnames import Petnames
from ..core.network.contacts import Contacts
from ..core.network.feeds import get_share_comments_group, set_share_comments_group
from ..core.posts.display import DisplayNames
from .auth import dd
from .site import blp


def _back() -> ResponseReturnValue:
    return redirect(url_for("pages.groups"), code=303)


def _name(field: str = "name") -> str:
    return names.group(request.form.get(field, "").strip(), field=field)


@blp.get("/people/groups")
def groups() -> ResponseReturnValue:
    """Every group (not ``blocked``) with its members, and the contacts and named keys to
    add (any other key is added from its person page)."""
    ids = Identities(dd())
    names_ = DisplayNames(dd())
    rows = [{"name": g, "members": [{"fingerprint": fp, "name": names_(fp)}
                                    for fp in ids.members(g)]}
            for g in ids.groups() if g != names.BLOCKED]
    named = {*Contacts(dd()).fingerprints(), *Petnames(dd()).all()}  # the people one knows
    known = sorted(({"fingerprint": fp, "name": names_(fp)} for fp in named
                    if ids.exists(fp) and not ids.is_own(fp)), key=lambda k: k["name"].casefold())
    return render_template("groups.html", groups=rows, known=known)


@blp.post("/people/groups")
def create_group() -> ResponseReturnValue:
    """Create a group (nothing happens if it exists)."""
    Identities(dd()).create_group(_name())
    return _back()


@blp.post("/people/groups/rename")
def rename() -> ResponseReturnValue:
    """Rename a group; identities sharing comments with it follow the new name."""
    old, new = _name(), _name("new_name")
    rename_group(dd(), old, new)
    for fp in Identities(dd()).own_fingerprints():
        if get_share_comments_group(dd(), fp) == old:
            set_share_comments_group(dd(), fp, new)
    return _back()


@blp.post("/people/groups/delete")
def delete_group() -> ResponseReturnValue:
    """Delete a group (its copies of keys; the people themselves stay)."""
    name = _name()
    Identities(dd()).delete_group(name)
    for fp in Identities(dd()).own_fingerprints():
        if get_share_comments_group(dd(), fp) == name:
            set_share_comments_group(dd(), fp, None)
    return _back()
