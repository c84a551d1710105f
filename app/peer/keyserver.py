"""Peer routes for public keys: fetch a ``.pub`` by fingerprint (a simple key server)."""

from __future__ import annotations

from flask import Response, current_app

from ..admin.schemas import FingerprintPath
from ..core.errors import NotFound
from ..core.identities import Identities
from ..web.api import Blueprint

blp = Blueprint("peer_identities", __name__, url_prefix="/identities",
                description="Public key documents by fingerprint")


@blp.route("/<fp>", methods=["GET"])
@blp.arguments(FingerprintPath, location="view_args")
@blp.response(200, content_type="text/plain")
def get_key(path: dict[str, str], fp: str) -> Response:
    """The ``.pub`` document of a known, unblocked identity."""
    ids = Identities(current_app.config["DIWAN"])
    if ids.is_blocked(path["fp"]):
        raise NotFound(f"unknown identity {path['fp']}", field="fingerprint")
    doc = ids.pub_document(path["fp"])
    return Response(doc, mimetype="text/plain")
