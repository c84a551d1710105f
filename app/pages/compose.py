"""Pages that write: compose (post, reply, message, reshare, media, profile) and unlocking.

Every compose form keeps its draft on the node (:mod:`app.core.posts.drafts`) until
the post is sent; :mod:`.drafting` turns the form into a draft and a draft into a post.

An identity is unlocked once per session with its password
(:mod:`app.core.identity.unlock`); after that posting needs no password until it
is locked, the session ends or ``web_unlock_idle`` seconds pass unused. Without
unlocking, the compose form takes the password for that one post.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from ..core.base.errors import BadInput, WrongPassword
from ..core.base.names import BLOCKED
from ..core.base.names import sha1 as check_sha1
from ..core.identity.identities import Identities
from ..core.identity.petnames import resolve
from ..core.identity.unlock import lock, unlock, unlocked_seed
from ..core.posts.authoring import Draft, publish, publish_unlocked
from ..core.posts.display import DisplayNames
from ..core.posts.drafts import FIELDS, PLACE_RE, Drafts
from ..core.posts.ingestresults import IngestResult
from . import drafting
from .auth import dd, own_fingerprints, session_keys
from .site import blp


def own_identities(names: DisplayNames) -> list[dict[str, Any]]:
    """The own identities with their names and whether this session has them unlocked;
    the one this session switched to (``session["current"]``) first, flagged ``current``."""
    keys = session_keys()
    current = session.get("current")
    rows = [{"fingerprint": fp, "name": names(fp), "unlocked": fp in keys,
             "current": fp == current} for fp in own_fingerprints()]
    rows.sort(key=lambda r: not r["current"])
    return rows


def _seed(fp: str) -> bytes | None:
    key = session_keys().get(fp)
    if not isinstance(key, str):
        return None
    try:
        return unlocked_seed(dd(), g.web_session.id, fp, bytes.fromhex(key))
    except ValueError:
        return None


def compose_form(place: str, names: DisplayNames, defaults: dict[str, str] | None = None,
                 state: dict[str, Any] | None = None, preview: bool = False) -> dict[str, Any]:
    """What ``_form.html`` shows: the draft kept at ``place`` (else ``defaults``), the
    identities, groups and, once asked for (or for a reply), who will receive it."""
    if state is None:
        state = Drafts(dd()).get(place) or {"audience": "everyone", "media": [],
                                            **(defaults or {})}
    state = {**{k: state.get(k) or "" for k in FIELDS}, "media": state.get("media") or []}
    state["audience"] = state["audience"] or "everyone"
    shown = preview or bool(state["reply_to"]) or place.startswith("chat-")
    return {"place": place, "state": state, "identities": own_identities(names),
            "groups": [grp for grp in Identities(dd()).groups() if grp != BLOCKED],
            "preview": drafting.audience_preview(dd(), state, names) if shown else None}


def _place(args: Mapping[str, str]) -> str:
    if reply_to := args.get("reply_to"):
        return "reply-" + check_sha1(reply_to, field="reply_to")
    place = args.get("place") or "compose"
    if not PLACE_RE.fullmatch(place):
        raise BadInput("a draft is named compose, reply-<sha1> or chat-<id>", field="place")
    return place


@blp.get("/compose")
def compose() -> ResponseReturnValue:
    """The compose form with the kept draft (``?reply_to=<sha>``, ``?reshare=<sha>``,
    ``?to=<names>`` start a new one)."""
    place = _place(request.args)
    prefill = {k: v for k in ("reply_to", "reshare", "to") if (v := request.args.get(k, ""))}
    state = None
    if prefill:
        state = {"audience": "people" if prefill.get("to") else "everyone", "media": [],
                 **(Drafts(dd()).get(place) or {}), **prefill}
    return render_template("compose.html", form=compose_form(place, DisplayNames(dd()),
                                                             state=state))


@blp.post("/compose")
def send() -> ResponseReturnValue:
    """Keep the draft, then (``action=send``, the default) sign and store the post and
    show where it belongs; ``action=preview`` shows the form again with who will receive
    it; ``action=discard`` throws the draft away. A draft that fails to send is kept."""
    place = _place(request.form)
    drafts = Drafts(dd())
    action = request.form.get("action") or "send"
    if action == "discard":
        drafts.discard(place)
        return redirect(url_for("pages.compose"), code=303)
    state = drafting.state_from_form(dd(), drafts.get(place))
    drafts.save(place, state)
    if action == "preview":
        form = compose_form(place, DisplayNames(dd()), state=state, preview=True)
        return render_template("compose.html", form=form)
    if action != "send":
        raise BadInput("action is send, preview or discard", field="action")
    author = resolve(dd(), state["author"], field="author")
    result = _publish(author, drafting.to_post(dd(), state))
    drafts.discard(place)
    return redirect(url_for("pages.thread", sha=result.sha1), code=303)


def _publish(author: str, draft: Draft) -> IngestResult:
    seed = _seed(author)
    if seed is not None:
        return publish_unlocked(dd(), author, seed, draft)
    password = request.form.get("password", "")
    if not password:
        raise BadInput("unlock the identity first, or give its password", field="password")
    return publish(dd(), author, password, draft)


@blp.post("/profile")
def profile() -> ResponseReturnValue:
    """Publish a public profile post with the name shown to others."""
    author = resolve(dd(), request.form.get("author", ""), field="author")
    name = request.form.get("profile_name", "").strip()
    if not name:
        raise BadInput("give the name to show", field="profile_name")
    result = _publish(author, Draft(profile={"name": name}))
    return redirect(url_for("pages.thread", sha=result.sha1), code=303)


@blp.post("/unlock")
def unlock_identity() -> ResponseReturnValue:
    """Unlock an own identity for this session (its password once)."""
    fp = resolve(dd(), request.form.get("fingerprint", ""))
    try:
        key = unlock(dd(), g.web_session.id, fp, request.form.get("password", ""))
    except WrongPassword:
        return render_template("error.html", code=403,
                               message="Wrong password: the identity stays locked."), 403
    session["keys"] = {**session_keys(), fp: key.hex()}
    return redirect(url_for("pages.identities"), code=303)


@blp.post("/lock")
def lock_identity() -> ResponseReturnValue:
    """Lock an identity again: the server forgets its sealed key, the cookie its session key."""
    fp = resolve(dd(), request.form.get("fingerprint", ""))
    lock(dd(), g.web_session.id, fp)
    session["keys"] = {k: v for k, v in session_keys().items() if k != fp}
    return redirect(url_for("pages.identities"), code=303)
