"""The node's own web pages on the admin port: server-rendered, no JavaScript needed.

A plain Flask blueprint (not flask-smorest: pages stay out of the OpenAPI
document) whose views call the core directly. A browser signs in with a one-time
login URL (``diwan open``) or the admin token and then carries a session cookie
(HttpOnly, SameSite=Strict, named and bound to the admin port); every form carries
a Flask-WTF CSRF token, on top of the admin guard's Host/Origin checks; every admin
response gets a strict Content-Security-Policy (``docs/threats.md``, The web pages).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from ..core.base.websessions import cookie_secret
from . import (  # noqa: F401  (each adds its routes to blp)
    actions,
    auth,
    book,
    changes,
    compose,
    groups,
    invites,
    notify,
    person,
    profiles,
    searchpage,
    selves,
    syncpages,
    views,
)
from .site import PortSessionInterface, blp, csrf, security_headers


def register(app: Flask) -> None:
    """Add the pages, sessions and CSRF protection to the admin ``app``."""
    dd = app.config["DIWAN"]
    app.config.update(
        SECRET_KEY=cookie_secret(dd),
        SESSION_COOKIE_NAME="diwan_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=dd.settings["web_session_ttl"]),
        WTF_CSRF_CHECK_DEFAULT=False,  # the JSON API uses a bearer token, not cookies
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session
    )
    app.session_interface = PortSessionInterface()
    csrf.init_app(app)
    app.register_blueprint(blp)
    app.after_request(security_headers)
