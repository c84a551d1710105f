"""Search: the posts this node holds whose words match, with the timeline's visibility
(blocked and muted authors left out); ``/search?q=`` is bookmarkable."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from ..core.base.errors import BadInput
from ..core.identity.mutes import Mutes
from ..core.posts.display import DisplayNames
from ..core.posts.search import search
from ..core.posts.timeline import Timeline
from .auth import dd
from .present import cards
from .site import blp


@blp.get("/search")
def search_page() -> ResponseReturnValue:
    """Results for ``q``, newest first (a query over the limits: 400 with the reason)."""
    q = request.args.get("q", "")
    tl = Timeline(dd())
    limit = min(tl.default_limit() * 5, dd().settings["max_page_size"])
    try:
        found = search(tl.index, q, limit=limit, hide=Mutes(dd()).all()) if q.strip() else []
    except BadInput as exc:
        return render_template("search.html", q=q, posts=[], error=exc.message), 400
    names_ = DisplayNames(dd(), timeline=tl)
    posts = cards(tl, [tl.read(e) for e in found], names_)
    return render_template("search.html", q=q, posts=posts, error=None)
