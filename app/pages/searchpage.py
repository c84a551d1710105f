"""Search: the posts this node holds whose words match, with the timeline's visibility
(blocked and muted authors left out); ``/search?q=`` is bookmarkable."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from ..core.base.errors import BadInput
from ..core.identity.mutes import Mutes
from ..core.posts.display import DisplayNames
from ..core.posts.search import Found, search
from ..core.posts.timeline import Timeline
from .auth import dd
from .present import cards
from .site import blp


@blp.get("/search")
def search_page() -> ResponseReturnValue:
    """Results for ``q``, newest first, a page at a time (``before=`` for older ones); a
    query over the limits or a bad ``before`` is a 400 with the reason."""
    q = request.args.get("q", "")
    tl = Timeline(dd())
    try:
        before = int(request.args["before"]) if request.args.get("before") else None
        found = search(tl.index, q, limit=tl.default_limit(), hide=Mutes(dd()).all(),
                       before=before) if q.strip() else Found([], None)
    except (BadInput, ValueError) as exc:
        message = exc.message if isinstance(exc, BadInput) else "that page link is not valid"
        return render_template("search.html", q=q, posts=[], error=message, before=None), 400
    names_ = DisplayNames(dd(), timeline=tl)
    posts = cards(tl, [tl.read(e) for e in found.items], names_)
    return render_template("search.html", q=q, posts=posts, error=None, before=found.before)
