"""Peer route for the encrypted feed exchange: ``POST /feeds/<fp>``.

The body is a sealed feed request (``application/octet-stream``, at most
``peer_max_body`` bytes); the answer is the sealed response. Everything is
done by :func:`app.core.network.feeds.serve_feed`; every bad body is a 4xx JSON error.
"""

from __future__ import annotations

from flask import Response, current_app, request

from ..core.base import names
from ..core.network.feeds import serve_feed
from ..web.api import Blueprint

blp = Blueprint("peer_feeds", __name__, url_prefix="/feeds",
                description="The encrypted, authenticated feed exchange (docs/protocol.md)")


@blp.route("/<fp>", methods=["POST"])
@blp.doc(parameters=[{"in": "path", "name": "fp", "required": True,
                      "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}],
         requestBody={"required": True, "content": {"application/octet-stream": {
             "schema": {"type": "string", "format": "binary"}}},
             "description": "a sealed feed request (docs/protocol.md, the feed exchange)"},
         responses={"200": {"description": "the sealed response: a Box to the request's "
                            "ephemeral key", "content": {"application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}}}}})
def feed(fp: str) -> Response:
    """Serve a page of an own identity's feed to an authenticated asker.

    The hot path of every sync: the fingerprint is checked with the strict
    pattern directly rather than through a schema (same rule, less work).
    """
    body = request.get_data(cache=False)
    sealed = serve_feed(current_app.config["DIWAN"], names.fingerprint(fp, field="fp"), body)
    return Response(sealed, mimetype="application/octet-stream",
                    headers={"Cache-Control": "no-store"})
