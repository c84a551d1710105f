"""Taking back and rewording posts from the pages (issue 9's records, ``docs/protocol.md``,
Deletion and edit records): an own post is deleted everywhere it went by a signed deletion
record, or edited by a new version; someone else's post is removed from this node only
and never fetched again. Signing uses the session's unlocked key, else the password."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue

from ..core.base import names
from ..core.base.errors import BadInput, NotFound
from ..core.identity.identities import Identities
from ..core.posts import records
from ..core.posts.authoring import Draft, delete_own
from ..core.posts.reconcile import open_index
from .auth import dd
from .compose import _publish, _seed
from .site import blp


def _entry(sha: str) -> tuple[str, str]:
    """``(author, sha1)`` of the post ``sha`` held here; :class:`NotFound` otherwise."""
    sha1 = names.sha1(sha, field="sha")
    entry = open_index(dd()).get(sha1)
    if entry is None:
        raise NotFound(f"no post {sha1} on this node", field="sha")
    return entry.author, entry.sha1


@blp.post("/thread/<sha>/delete")
def delete_post(sha: str) -> ResponseReturnValue:
    """Delete the post ``sha``: an own post everywhere (a signed deletion record), someone
    else's from this node only. Returns to the home page."""
    author, sha1 = _entry(sha)
    if Identities(dd()).is_own(author):
        seed = _seed(author)
        password = request.form.get("password", "")
        if seed is None and not password:
            raise BadInput("unlock the identity first, or give its password", field="password")
        delete_own(dd(), author, sha1, password=password or None, seed=seed)
    else:
        records.forget(dd(), open_index(dd()), author, sha1)
    return redirect(url_for("pages.home"), code=303)


@blp.post("/thread/<sha>/edit")
def edit_post(sha: str) -> ResponseReturnValue:
    """Publish a new version of the own post ``sha`` with the text given; followers keep
    the earlier text one click away. Shows the thread of the new version."""
    author, sha1 = _entry(sha)
    if not Identities(dd()).is_own(author):
        raise BadInput("only your own posts can be edited", field="sha")
    text = request.form.get("text", "")
    if not text.strip():
        raise BadInput("the new text is empty", field="text")
    result = _publish(author, Draft(text=text, edit=sha1))
    return redirect(url_for("pages.thread", sha=result.sha1), code=303)
