"""Pages that write: compose (post, reply, message, reshare, media, profile) and unlocking.

An identity is unlocked once per session with its password
(:mod:`app.core.identity.unlock`); after that posting needs no password until it
is locked, the session ends or ``web_unlock_idle`` seconds pass unused. Without
unlocking, the compose form takes the password for that one post.
"""

from __future__ import annotations

import re
from typing import Any

from flask import g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from ..core.base.errors import BadInput, WrongPassword
from ..core.identity.identities import Identities
from ..core.identity.petnames import resolve
from ..core.identity.unlock import lock, unlock, unlocked_seed
from ..core.posts.authoring import Draft, publish, publish_unlocked
from ..core.posts.display import DisplayNames
from .auth import dd, session_keys
from .site import blp

_SPLIT_RE = re.compile(r"[\s,]+")
MAX_FILES = 8


def own_identities(names: DisplayNames) -> list[dict[str, Any]]:
    """The own identities with their names and whether this session has them unlocked;
    the one this session switched to (``session["current"]``) first, flagged ``current``."""
    keys = session_keys()
    current = session.get("current")
    rows = [{"fingerprint": fp, "name": names(fp), "unlocked": fp in keys,
             "current": fp == current} for fp in Identities(dd()).own_fingerprints()]
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


def _field(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    return value or None


def _draft() -> Draft:
    to = [resolve(dd(), part, field="to") for part in _SPLIT_RE.split(request.form.get("to", ""))
          if part]
    files = [f for f in request.files.getlist("media") if f.filename]
    if len(files) > MAX_FILES:
        raise BadInput(f"at most {MAX_FILES} files per post", field="media")
    limit = dd().settings["max_post_bytes"]
    media = []
    for i, storage in enumerate(files, start=1):
        data = storage.read(limit + 1)
        if len(data) > limit:
            raise BadInput("a file is larger than max_post_bytes", field="media")
        media.append((f"MEDIA{i}" if i > 1 else "MEDIA", data))
    profile = {"name": n} if (n := _field("profile_name")) else {}
    return Draft(text=request.form.get("text") or None, reply_to=_field("reply_to"), to=to,
                 reshare=_field("reshare"), profile=profile, media=media)


@blp.get("/compose")
def compose() -> ResponseReturnValue:
    """The compose form (``?reply_to=<sha>``, ``?reshare=<sha>``, ``?to=<names>`` prefill)."""
    names = DisplayNames(dd())
    return render_template("compose.html", identities=own_identities(names),
                           reply_to=request.args.get("reply_to", ""),
                           reshare=request.args.get("reshare", ""),
                           to=request.args.get("to", ""), error=None)


@blp.post("/compose")
def send() -> ResponseReturnValue:
    """Sign and store the post; then show where it belongs (its thread, or the chat)."""
    author = resolve(dd(), request.form.get("author", ""), field="author")
    draft = _draft()
    seed = _seed(author)
    if seed is not None:
        result = publish_unlocked(dd(), author, seed, draft)
    else:
        password = request.form.get("password", "")
        if not password:
            raise BadInput("unlock the identity first, or give its password", field="password")
        result = publish(dd(), author, password, draft)
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
