"""Peer route for the feed exchange: ``POST /feeds/<fp>`` (docs/protocol.md, "The feed exchange").

The body is Noise IK message 1 behind a version byte and a key id
(``application/octet-stream``, exactly ``exchange.REQUEST_BYTES`` bytes); the
answer is message 2 and the page's transport messages with its exact
``Content-Length``: in one piece up to :data:`WHOLE_BELOW` bytes (most answers:
one socket write), else streamed. Everything is done by
:func:`app.core.network.feeds.serve_feed`; every failure is a 4xx JSON error,
and every request that does not authenticate gets the same one.
"""

from __future__ import annotations

from flask import Response, current_app, request

from ..core.base import names
from ..core.network.feeds import serve_feed
from ..web.api import Blueprint

WHOLE_BELOW = 64 * 1024  # bytes: a smaller response is sent in one write, a larger one streamed

blp = Blueprint("peer_feeds", __name__, url_prefix="/feeds",
                description="The feed exchange, a Noise IK handshake (docs/protocol.md)")


@blp.route("/<fp>", methods=["POST"])
@blp.doc(parameters=[{"in": "path", "name": "fp", "required": True,
                      "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}],
         requestBody={"required": True, "content": {"application/octet-stream": {
             "schema": {"type": "string", "format": "binary"}}},
             "description": "0x02, the key id and Noise IK message 1 (docs/protocol.md, the "
                            "feed exchange)"},
         responses={"200": {"description": "Noise message 2 and the page's transport "
                            "messages, padded to a size bucket",
                            "content": {"application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}}}},
                    "400": {"description": "the one answer to a request that does not "
                            "authenticate (not_authenticated), or a bad request"},
                    "429": {"description": "a budget is spent; see Retry-After"}})
def feed(fp: str) -> Response:
    """Serve a page of an own identity's feed to an authenticated asker.

    The hot path of every sync: the fingerprint is checked with the strict
    pattern directly rather than through a schema (same rule, less work).
    """
    body = request.get_data(cache=False)
    answer = serve_feed(current_app.config["DIWAN"], names.fingerprint(fp, field="fp"), body,
                        remote=request.remote_addr or "")
    body_or_pieces = answer.read() if answer.size <= WHOLE_BELOW else answer.pieces
    return Response(body_or_pieces, mimetype="application/octet-stream",
                    headers={"Cache-Control": "no-store", "Content-Length": str(answer.size)})
