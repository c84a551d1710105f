"""Peer routes for public keys: fetch a ``.pub`` by fingerprint (a simple key server),
and, in key-server mode only, upload one (``POST /identities``)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from marshmallow import Schema, fields

from ..core.base.errors import NotFound
from ..core.identity.identities import Identities
from ..core.network.keyserver import accept_upload
from ..schemas.identity import FingerprintPath, Text
from ..web.api import Blueprint

blp = Blueprint("peer_identities", __name__, url_prefix="/identities",
                description="Public key documents by fingerprint")


class KeyUpload(Schema):
    public_key = Text(required=True, metadata={"description": "a diwan-public-key-v1 document"})


class Uploaded(Schema):
    fingerprint = fields.String()
    created = fields.Boolean(metadata={"description": "false if the key was already held"})


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


@blp.route("", methods=["POST"])
@blp.response(201, Uploaded)
@blp.alt_response(200, schema=Uploaded, description="already held (a key is never replaced)")
@blp.doc(requestBody={"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}},
    "application/json": {"schema": KeyUpload}}})
def upload_key() -> tuple[dict[str, Any], int]:
    """Key-server mode only (setting ``key_server``): store a verified ``.pub`` document."""
    dd = current_app.config["DIWAN"]
    if not dd.settings["key_server"]:
        raise NotFound("this node is not a key server")
    fp, created = accept_upload(dd, request.get_data(cache=False), request.remote_addr or "",
                                as_json=request.mimetype == "application/json")
    return {"fingerprint": fp, "created": created}, (201 if created else 200)
