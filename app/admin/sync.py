"""Admin routes for syncing: run a sync now, see each contact's status, the lying peers
(nodes that served a wrong key inside an authenticated exchange)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from ..core.network.keylookup import LyingPeers
from ..core.network.ownsync import own_node_statuses, sync_own_nodes
from ..core.network.sync import statuses, sync_all
from ..schemas.network import AddressQuery, LyingList, StatusList, SyncIn
from ..web.api import Blueprint

blp = Blueprint("sync", __name__, description="Pulling contacts' feeds; peers that lied")


def _dd() -> Any:
    return current_app.config["DIWAN"]


@blp.route("/sync", methods=["GET"])
@blp.response(200, StatusList)
def get_status() -> dict[str, Any]:
    """The sync status of every contact, and of every other node of each own identity."""
    return {"statuses": [st.to_dict() for st in statuses(_dd())],
            "own_nodes": own_node_statuses(_dd())}


@blp.route("/sync", methods=["POST"])
@blp.arguments(SyncIn, required=False)
@blp.response(200, StatusList)
def post_sync(body: dict[str, Any]) -> dict[str, Any]:
    """Sync every contact (or ``fingerprint`` only) now, back-off or not, and (without
    ``fingerprint``) every own identity with its other nodes; returns the statuses."""
    only = [body["fingerprint"]] if body.get("fingerprint") else None
    results = sync_all(_dd(), only=only, force=True, full=body.get("full", False))
    own = [] if only else sync_own_nodes(_dd())
    return {"statuses": [st.to_dict() for st in results], "own_nodes": own}


@blp.route("/peers/lying", methods=["GET"])
@blp.response(200, LyingList)
def lying_peers() -> dict[str, Any]:
    """Nodes that served a wrong key inside an authenticated exchange (with why): not synced
    again until forgiven. A wrong answer to a plain GET is never recorded here."""
    return {"lying_peers": LyingPeers(_dd()).list()}


@blp.route("/peers/lying", methods=["DELETE"])
@blp.arguments(AddressQuery, location="query")
@blp.response(204)
def forgive_peer(query: dict[str, str]) -> None:
    """Take an address off the lying-peer list (``?address=http://host:port``)."""
    LyingPeers(_dd()).forgive(query["address"])
