"""The pages' blueprint, CSRF protection and the security headers of every admin response."""

from __future__ import annotations

from flask import Blueprint, Flask, Response
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

from ..web.guard import request_port

blp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static")
csrf = CSRFProtect()

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


BIDI_CONTROLS = dict.fromkeys([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                               *range(0x2066, 0x206A)])


@blp.app_template_filter("plain")
def plain(text: str) -> str:
    """``text`` without bidirectional controls, for places ``<bdi>`` cannot isolate (the
    ``<title>``, so a name cannot reorder the rest of the window title)."""
    return str(text).translate(BIDI_CONTROLS)


class PortSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session under a name that carries the port the browser
    used (``diwan_session_8888``): browsers send ``127.0.0.1`` cookies to every port, so
    two nodes on one machine would otherwise overwrite each other's cookie; the session
    record on the server is bound to the same port (T55)."""

    def get_cookie_name(self, app: Flask) -> str:
        return f"{app.config['SESSION_COOKIE_NAME']}_{request_port()}"


def security_headers(response: Response) -> Response:
    """Headers on every admin response (a route that set its own CSP, media, keeps it)."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
