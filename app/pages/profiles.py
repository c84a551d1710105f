"""My own profiles: one per audience (everyone, or chosen people), edited side by side,
each saying who sees it. Saving one publishes a new profile post to that audience."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core.base.errors import BadInput
from ..core.identity.petnames import resolve
from ..core.posts.attributes import type_of
from ..core.posts.authoring import PROFILE_FIELDS, Draft, publish, publish_unlocked
from ..core.posts.display import DisplayNames
from ..core.posts.timeline import Timeline
from .auth import dd
from .compose import _seed, own_identities
from .drafting import SPLIT_RE
from .site import blp

FIELD_OF = {t: f for f, t in PROFILE_FIELDS.items()}


def _audiences(tl: Timeline, fp: str, names_: DisplayNames) -> list[dict[str, Any]]:
    """The newest profile of ``fp`` per audience (public first), as form values."""
    page = tl.page(authors=[fp], kinds=["profile"], limit=dd().settings["max_page_size"])
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for entry in page.items:
        post = tl.read(entry)
        if post is None or tuple(sorted(post.recipients)) in found:
            continue
        values = {FIELD_OF[type_of(k)]: v for k, v in sorted(post.attributes.items())
                  if type_of(k) in FIELD_OF and isinstance(v, str)}
        to = sorted(post.recipients)
        found[tuple(to)] = {"to": ",".join(to), "values": values,
                            "seen_by": [names_(r) for r in to] or None}
    if () not in found:
        found[()] = {"to": "", "values": {}, "seen_by": None}
    return sorted(found.values(), key=lambda a: a["to"] != "")


@blp.get("/me/profiles")
def profiles() -> ResponseReturnValue:
    """Each own identity's profiles side by side, one per audience, plus a new audience."""
    tl = Timeline(dd())
    names_ = DisplayNames(dd(), timeline=tl)
    rows = [{**i, "audiences": _audiences(tl, i["fingerprint"], names_)}
            for i in own_identities(names_)]
    return render_template("profiles.html", identities=rows, fields=list(PROFILE_FIELDS))


@blp.post("/me/profiles")
def save_profile() -> ResponseReturnValue:
    """Publish a profile (the fields given) to the audience ``to`` (empty: everyone)."""
    author = resolve(dd(), request.form.get("author", ""), field="author")
    to = [resolve(dd(), p, field="to") for p in SPLIT_RE.split(request.form.get("to", "")) if p]
    fields = {f: v for f in PROFILE_FIELDS if (v := request.form.get(f, "").strip())}
    if not fields:
        raise BadInput("fill in at least one field of the profile", field="name")
    draft = Draft(profile=fields, to=to)
    seed = _seed(author)
    if seed is not None:
        publish_unlocked(dd(), author, seed, draft)
    elif password := request.form.get("password", ""):
        publish(dd(), author, password, draft)
    else:
        raise BadInput("unlock the identity first, or give its password", field="password")
    return redirect(url_for("pages.profiles"), code=303)
