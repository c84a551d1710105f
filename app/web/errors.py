"""The one place where errors become HTTP responses, for both apps.

A browser (``Accept`` preferring ``text/html``) gets the error as a small HTML
page; everything else gets JSON ``{"code": <http status>, "status": <error code>,
"message": <what to do>, "errors": {<field>: [<reason>, ...]}}``: ``status`` is
always a snake_case code (the project's own, such as ``not_found`` or
``bad_post``, else the HTTP reason, such as ``method_not_allowed``) and
``errors`` is always there (``{}`` when no field is at fault). A 401 carries
``WWW-Authenticate: Bearer``, a 405 ``Allow``. Project errors, werkzeug's HTTP
errors, marshmallow/webargs validation errors and anything unexpected (logged,
answered as a bare 500 without details) all pass through here; no route builds
its own error JSON. A write that failed because the
disk is full (``ENOSPC``/``EDQUOT``, SQLite's "disk is full") is 507
``disk_full`` naming the data directory and its free space.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from markupsafe import escape
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from ..core.base.diskspace import disk_full, is_full_error
from ..core.base.errors import DiwanError

log = logging.getLogger("diwan.web")


def error_response(status: int, message: str, errors: dict[str, Any] | None = None,
                   code: str | None = None,
                   headers: dict[str, str] | None = None) -> ResponseReturnValue:
    if wants_html():
        return _html_page(status, message, headers)
    body: dict[str, Any] = {"code": status, "status": code or status_code(status),
                            "message": message, "errors": errors or {}}
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def status_code(status: int) -> str:
    """The snake_case code of an HTTP status: 405 -> ``method_not_allowed``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return "".join(c if c.isalnum() else "_" for c in phrase.lower())


def wants_html() -> bool:
    """True if the client (a browser) prefers HTML to JSON by its ``Accept`` header."""
    accept = request.accept_mimetypes
    return accept.best_match(["application/json", "text/html"]) == "text/html" \
        and accept["text/html"] > accept["application/json"]


def _html_page(status: int, message: str,
               headers: dict[str, str] | None) -> ResponseReturnValue:
    """The same error as a small HTML page (every value escaped), for a browser."""
    title = f"{status} {escape(HTTPStatus(status).phrase)}"
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}'
            f'</title></head><body><h1>{title}</h1><p role="alert" dir="auto">'
            f'{escape(message)}</p><p><a href="/">Back</a></p></body></html>')
    return body, status, {"Content-Type": "text/html; charset=utf-8", **(headers or {})}


def _diwan(exc: DiwanError) -> ResponseReturnValue:
    errors = {exc.field: [exc.message]} if exc.field else None
    retry = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry)} if isinstance(retry, int) else {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="diwan"'
    return error_response(exc.status, exc.message, errors, exc.code, headers)


def _http(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if isinstance(errors, dict) and len(errors) == 1:
        # webargs nests by location ({"json": {...}}); show the fields themselves
        (only,) = errors.values()
        if isinstance(only, dict):
            errors = only
    message = data.get("message") or exc.description or HTTPStatus(status).phrase
    if errors and status in (400, 422):
        message = "invalid input: " + ", ".join(sorted(str(k) for k in errors))
    headers = dict(data.get("headers") or {})
    if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="diwan"')
    return error_response(status, message, errors, None, headers)


def _validation(exc: ValidationError) -> ResponseReturnValue:
    errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return error_response(400, "invalid input: " + ", ".join(sorted(map(str, errors))), errors,
                          "bad_input")


def _unexpected(exc: Exception) -> ResponseReturnValue:
    if is_full_error(exc):  # a full disk is a clear, temporary state, not a bug
        dd = current_app.config["DIWAN"]
        log.warning("write failed, disk full: %s", exc)
        return _diwan(disk_full(dd.root))
    log.exception("unexpected error")
    return error_response(500, "internal error; see the node's log")


def register(app: Flask) -> None:
    app.register_error_handler(DiwanError, _diwan)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(ValidationError, _validation)
    app.register_error_handler(Exception, _unexpected)
