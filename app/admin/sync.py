"""Admin routes for syncing: run a sync now, see each contact's status, the lying peers."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, fields

from ..core.network.keylookup import LyingPeers
from ..core.network.sync import statuses, sync_all
from ..web.api import Blueprint
from . import schemas as s

blp = Blueprint("sync", __name__, description="Pulling contacts' feeds; peers that lied")


class StatusOut(Schema):
    fingerprint = fields.String()
    address = fields.String(allow_none=True)
    identity = fields.String(allow_none=True)
    state = fields.String(metadata={"description": "never, ok or failing"})
    last_attempt = fields.Float(allow_none=True)
    last_success = fields.Float(allow_none=True)
    last_error = fields.String(allow_none=True)
    failures = fields.Integer(metadata={"description": "failed syncs in a row"})
    next_attempt = fields.Float(allow_none=True, metadata={
        "description": "backing off until this unix time (null: due at the next run)"})
    posts_received = fields.Integer(metadata={"description": "new posts, all runs"})
    posts_last_run = fields.Integer()
    pages_last_run = fields.Integer()
    rejected = fields.Integer(metadata={"description": "posts refused, all runs"})
    rejected_last_run = fields.Integer()
    last_rejection = fields.String(allow_none=True)
    cursor_time = fields.Integer(allow_none=True,
                                 metadata={"description": "newest CREATED_TIME held"})
    skipped = fields.String(allow_none=True, metadata={
        "description": "why this sync left the contact alone (blocked, backing off)"})


class StatusList(Schema):
    statuses = fields.List(fields.Nested(StatusOut))


class SyncIn(Schema):
    fingerprint = s.Fingerprint(metadata={"description": "sync only this contact"})
    full = fields.Boolean(load_default=False, metadata={
        "description": "ask for the whole feed again, not only what is newer than held"})


class LyingOut(Schema):
    address = fields.String()
    fingerprint = fields.String(metadata={"description": "the key that was asked for"})
    why = fields.String()
    when = fields.Float(metadata={"description": "unix time it was recorded"})


class LyingList(Schema):
    lying_peers = fields.List(fields.Nested(LyingOut))


class AddressQuery(Schema):
    address = fields.String(required=True)


def _dd() -> Any:
    return current_app.config["DIWAN"]


@blp.route("/sync", methods=["GET"])
@blp.response(200, StatusList)
def get_status() -> dict[str, Any]:
    """The sync status of every contact."""
    return {"statuses": [st.to_dict() for st in statuses(_dd())]}


@blp.route("/sync", methods=["POST"])
@blp.arguments(SyncIn, required=False)
@blp.response(200, StatusList)
def post_sync(body: dict[str, Any]) -> dict[str, Any]:
    """Sync every contact (or ``fingerprint`` only) now, back-off or not; returns the statuses."""
    only = [body["fingerprint"]] if body.get("fingerprint") else None
    results = sync_all(_dd(), only=only, force=True, full=body.get("full", False))
    return {"statuses": [st.to_dict() for st in results]}


@blp.route("/peers/lying", methods=["GET"])
@blp.response(200, LyingList)
def lying_peers() -> dict[str, Any]:
    """Nodes that answered a key lookup with a wrong key: never asked again."""
    return {"lying_peers": LyingPeers(_dd()).list()}


@blp.route("/peers/lying", methods=["DELETE"])
@blp.arguments(AddressQuery, location="query")
@blp.response(204)
def forgive_peer(query: dict[str, str]) -> None:
    """Take an address off the lying-peer list (``?address=http://host:port``)."""
    LyingPeers(_dd()).forgive(query["address"])
