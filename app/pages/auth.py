"""Signing in to the pages: the one-time login URL, the admin token form, signing out.

The Flask session cookie (signed with ``state/web/cookie.key``) carries ``sid``,
the session token of :mod:`app.core.base.websessions` (the server-side record
decides whether it is live), and ``keys``, the session keys of identities
unlocked in it (:mod:`app.core.identity.unlock`).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from ..core.base.datadir import DataDir
from ..core.base.websessions import (
    Session,
    check_session,
    end_session,
    redeem_login_code,
    start_session,
)
from ..core.identity.identities import Identities
from ..web.guard import request_port
from .site import blp, csrf

OPEN_ENDPOINTS = frozenset({"pages.signin", "pages.login", "pages.static", "pages.favicon"})


def dd() -> DataDir:
    return current_app.config["DIWAN"]


def own_fingerprints() -> list[str]:
    """The own identities' fingerprints, listed once per request (a directory scan)."""
    if "own_fps" not in g:
        g.own_fps = Identities(dd()).own_fingerprints()
    return list(g.own_fps)


def current_session() -> Session | None:
    """The live session of this request's cookie, or None."""
    return check_session(dd(), session.get("sid"), port=request_port())


def require_session() -> ResponseReturnValue | None:
    """Before every page: CSRF check on POST, then a live session or the sign-in page."""
    if request.method == "POST":
        csrf.protect()
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    live = current_session()
    if live is None:
        session.pop("sid", None)
        return redirect(url_for("pages.signin"))
    g.web_session = live
    return None


blp.before_request(require_session)


def _begin() -> ResponseReturnValue:
    session.clear()  # a fresh cookie (and CSRF token) for the new session
    token, _ = start_session(dd(), port=request_port())
    session.permanent = True
    session["sid"] = token
    return redirect(url_for("pages.home"))


@blp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """Browsers ask for ``/favicon.ico`` on their own; answer with the icon, not a 401."""
    return redirect(url_for("pages.static", filename="favicon.svg"), code=301)


@blp.get("/login")
def login() -> ResponseReturnValue:
    """The one-time login URL: a valid code starts a session and the redirect drops the code
    from the address bar; a used, expired or wrong one shows the sign-in page (403)."""
    if redeem_login_code(dd(), request.args.get("code")):
        return _begin()
    return render_template("signin.html", failed="This login link is used, expired or "
                           "wrong. Run 'diwan open' for a new one."), 403


@blp.route("/signin", methods=["GET", "POST"])
def signin() -> ResponseReturnValue:
    """Sign in with the admin token pasted by hand (from ``<data dir>/admin.token``)."""
    if request.method == "POST":
        token = request.form.get("token", "")
        if token and dd().check_token(token.strip()):
            return _begin()
        return render_template("signin.html", failed="That is not this node's admin token."), 403
    return render_template("signin.html", failed=None)


@blp.post("/signout")
def signout() -> ResponseReturnValue:
    """End this session: the server forgets it and every identity it unlocked."""
    end_session(dd(), g.web_session.id)
    session.clear()
    return redirect(url_for("pages.signin"))


def session_keys() -> dict[str, Any]:
    """``{fingerprint: hex session key}`` of the identities unlocked in this cookie."""
    keys = session.get("keys")
    return keys if isinstance(keys, dict) else {}
