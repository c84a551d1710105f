"""Admin access checks: loopback Host only, no cross-site Origin, a bearer token.

These run before every admin request. ``Host`` must name the loopback or a name
in the ``admin_allowed_hosts`` setting (a DNS rebinding page arrives with its own
host name); an ``Origin`` or ``Sec-Fetch-Site`` from another site is refused
(CSRF); and the token from ``admin.token`` must be presented as
``Authorization: Bearer <token>``. The web pages (blueprint ``pages``) check their
own session cookie instead, and so may a ``GET`` of a post's media, which the
pages show in ``<img>``/``<audio>``/``<video>``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, request, session

from ..core.base.errors import RefusedOrigin, Unauthorized
from ..core.base.websessions import check_session

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
OPEN_PATHS = frozenset({"/openapi.json", "/health"})
COOKIE_ENDPOINTS = frozenset({"posts.media"})  # GET only: what the pages embed


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def request_port() -> int:
    """The port of this request's ``Host`` header (80 or 443 by the scheme if it names
    none, or if it is not a number): the port a browser's session is bound to (T55)."""
    try:
        port = urlsplit("//" + request.headers.get("Host", "")).port
    except ValueError:
        port = None
    return port if port is not None else (443 if request.scheme == "https" else 80)


def allowed_hosts(setting: str) -> frozenset[str]:
    """The host names of the ``admin_allowed_hosts`` setting (comma-separated), lowercased."""
    return frozenset(_host_name(h) for h in setting.split(",") if h.strip())


def check_admin_request() -> None:
    """Refuse an admin request before it reaches a route (a Flask ``before_request`` hook).

    Raises :class:`RefusedOrigin` for a non-loopback ``Host`` or a cross-site ``Origin`` /
    ``Sec-Fetch-Site``, and :class:`Unauthorized` for a missing or wrong bearer token
    (``/openapi.json`` and ``/health`` need none). Both become JSON errors in the one
    handler, ``app/web/errors.py`` (``docs/protocol.md``, Admin API access).
    """
    dd = current_app.config["DIWAN"]
    allowed = LOOPBACK_HOSTS | allowed_hosts(dd.settings["admin_allowed_hosts"])
    host = _host_name(request.headers.get("Host", ""))
    if host not in allowed:
        raise RefusedOrigin("the admin API answers only to Host localhost, 127.0.0.1 or [::1] "
                            "(and the names in the admin_allowed_hosts setting)")
    origin = request.headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or _host_name(parts.netloc) not in allowed:
            raise RefusedOrigin("cross-site requests are refused")
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise RefusedOrigin("cross-site requests are refused")
    if request.path in OPEN_PATHS or request.blueprint == "pages":
        return  # the pages check their session themselves (app/pages/auth.py)
    if (request.method in ("GET", "HEAD") and request.endpoint in COOKIE_ENDPOINTS
            and check_session(dd, session.get("sid"), port=request_port()) is not None):
        return
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token or not dd.check_token(token.strip()):
        raise Unauthorized()
