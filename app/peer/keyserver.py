"""Peer routes for public keys: ``GET /identities/<fp>`` serves this node's own keys (and
uploaded ones in key-server mode) with one identical 404 for every other fingerprint;
``POST /identities`` uploads a key in key-server mode only."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from marshmallow import Schema, fields

from ..core.base.errors import NotFound
from ..core.network.keyserver import accept_upload, served_document
from ..schemas.identity import FingerprintPath, Text
from ..web.api import Blueprint

blp = Blueprint("peer_identities", __name__, url_prefix="/identities",
                description="Public key documents by fingerprint")


class KeyUpload(Schema):
    public_key = Text(required=True, metadata={"description": "a diwan-public-key-v2 document"})


class Uploaded(Schema):
    fingerprint = fields.String()
    created = fields.Boolean(metadata={"description": "false if the key was already held"})


NOT_SERVED = "no key is served here for this fingerprint"


@blp.route("/<fp>", methods=["GET"])
@blp.arguments(FingerprintPath, location="view_args")
@blp.response(200, content_type="text/plain")
@blp.alt_response(404, description="one identical answer for every fingerprint not served "
                  "(blocked, a contact's key, unknown, or own keys when serve_own_keys is off)")
def get_key(path: dict[str, str], fp: str) -> Response:
    """The ``.pub`` document of an own identity, or of an uploaded key in key-server mode."""
    doc = served_document(current_app.config["DIWAN"], path["fp"])
    if doc is None:
        raise NotFound(NOT_SERVED, field="fingerprint")
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
