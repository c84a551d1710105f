"""Admin access checks: loopback Host only, no cross-site Origin, a bearer token.

These run before every admin request. ``Host`` must name the loopback (a DNS
rebinding page arrives with its own host name); an ``Origin`` or
``Sec-Fetch-Site`` from another site is refused (CSRF); and the token from
``admin.token`` must be presented as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, request

from ..core.base.errors import DiwanError

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
OPEN_PATHS = frozenset({"/openapi.json", "/health"})


class Unauthorized(DiwanError):
    """Send the token from <data dir>/admin.token as 'Authorization: Bearer <token>'."""

    status = 401
    code = "unauthorized"


class RefusedOrigin(DiwanError):
    """The admin API answers only loopback, same-origin requests."""

    status = 403
    code = "refused_origin"


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def check_admin_request() -> None:
    host = _host_name(request.headers.get("Host", ""))
    if host not in LOOPBACK_HOSTS:
        raise RefusedOrigin("the admin API answers only to Host localhost, 127.0.0.1 or [::1]")
    origin = request.headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or _host_name(parts.netloc) not in LOOPBACK_HOSTS:
            raise RefusedOrigin("cross-site requests are refused")
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise RefusedOrigin("cross-site requests are refused")
    if request.path in OPEN_PATHS:
        return
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    dd = current_app.config["DIWAN"]
    if scheme.lower() != "bearer" or not token or not dd.check_token(token.strip()):
        raise Unauthorized()
