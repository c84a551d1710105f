"""Peer route for the encrypted feed exchange: ``POST /feeds/<fp>``.

The body is a sealed feed request (``application/octet-stream``, at most
``peer_max_body`` bytes); the answer is the sealed response. Everything is
done by :func:`app.core.feeds.serve_feed`; every bad body is a 4xx JSON error.
"""

from __future__ import annotations

from flask import Response, current_app, request

from ..admin.schemas import FingerprintPath
from ..core.feeds import serve_feed
from ..web.api import Blueprint

blp = Blueprint("peer_feeds", __name__, url_prefix="/feeds",
                description="The encrypted, authenticated feed exchange (docs/protocol.md)")


@blp.route("/<fp>", methods=["POST"])
@blp.arguments(FingerprintPath, location="view_args")
@blp.response(200, content_type="application/octet-stream",
              description="the sealed response: a Box to the request's ephemeral key")
@blp.doc(requestBody={"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}},
    "description": "a sealed feed request (docs/protocol.md, the feed exchange)"})
def feed(path: dict[str, str], fp: str) -> Response:
    """Serve a page of an own identity's feed to an authenticated asker."""
    body = request.get_data(cache=False)
    sealed = serve_feed(current_app.config["DIWAN"], path["fp"], body)
    return Response(sealed, mimetype="application/octet-stream",
                    headers={"Cache-Control": "no-store"})
