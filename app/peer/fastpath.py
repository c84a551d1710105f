"""The feed exchange's hot path: ``POST /feeds/<FP>`` served below Flask's routing.

Every sync of every contact is one such request, so the peer app answers the
well-formed ones (the method, a fingerprint of 64 lowercase hex digits, a
``Content-Length`` of exactly :data:`exchange.REQUEST_BYTES`) as a WSGI
middleware in front of Flask (``app.wsgi_app``, Flask's documented place for
one): the same :func:`serve_feed`, the same headers, without Flask's request and
response objects, routing and hooks, a large share of such a request's CPU
(``bench/README.md``, "Issue 8, second speed pass"). Everything else (another
method, path or length, a chunked body) goes on to Flask, whose route
(:mod:`.feeds`) answers it as before. A failure is rendered by the peer app's
error handlers inside a request context (:mod:`app.web.errors`, the one place
errors become responses), so either path gives the same answer byte for byte.
``peer_max_body`` is never below the request size (its floor, ``config.py``), so
the body limit Flask would check always admits what this path serves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from ..core.network.exchange import REQUEST_BYTES
from ..core.network.feeds import serve_feed
from .feeds import WHOLE_BELOW

_ROUTE = re.compile(r"/feeds/([0-9a-f]{64})")
_LENGTH = str(REQUEST_BYTES)


class FeedFastPath:
    """WSGI middleware: well-formed feed requests to :func:`serve_feed`, the rest to Flask."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.flask_wsgi = app.wsgi_app
        self.dd = app.config["DIWAN"]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        found = _ROUTE.fullmatch(environ.get("PATH_INFO", ""))
        if (found is None or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("CONTENT_LENGTH") != _LENGTH
                or "HTTP_TRANSFER_ENCODING" in environ or environ.get("SCRIPT_NAME")):
            return self.flask_wsgi(environ, start_response)
        body = environ["wsgi.input"].read(REQUEST_BYTES)
        try:
            answer = serve_feed(self.dd, found.group(1), body,
                                remote=environ.get("REMOTE_ADDR") or "")
        except Exception as exc:  # noqa: BLE001 - rendered by the app's error handlers
            with self.app.request_context(environ):
                response = self.app.make_response(self.app.handle_user_exception(exc))
            return response(environ, start_response)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Cache-Control", "no-store"),
                                  ("Content-Length", str(answer.size))])
        return [answer.read()] if answer.size <= WHOLE_BELOW else answer.pieces


def install(app: Flask) -> None:
    """Put the hot path in front of ``app`` (the peer app)."""
    app.wsgi_app = FeedFastPath(app)  # type: ignore[method-assign]
