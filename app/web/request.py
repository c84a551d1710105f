"""The request class of both apps: bodies over the limit are refused, however they are sent.

Werkzeug checks ``MAX_CONTENT_LENGTH`` against the ``Content-Length`` header,
but a chunked body (no ``Content-Length``) is silently cut at the limit and the
truncated bytes are handed on as if they were the whole body. Here the cut is
noticed (one more byte is waiting) and answered with 413, like any other
over-long body.
"""

from __future__ import annotations

from typing import Any

import flask
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from ..core.base.errors import DiwanError


class Request(flask.Request):
    def get_data(self, cache: bool = True, as_text: bool = False,  # type: ignore[override]
                 parse_form_data: bool = False) -> Any:
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = self.max_content_length
        if (self.content_length is None and limit is not None and len(data) >= limit
                and self.environ["wsgi.input"].read(1)):
            raise RequestEntityTooLarge()
        return data.decode(errors="replace") if as_text else data

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, DiwanError):  # the strict parser's own 400, with its reason
            raise e
        return super().on_json_loading_failed(e)


def refuse_large_bodies() -> None:
    """Before every request: a declared body over the limit is a 413 on every route,
    whether or not the route reads a body."""
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
