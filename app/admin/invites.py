"""Admin routes for invites (make one, list the ones made) and for moving an own identity
to another node of one's own (export, import)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from ..core.base.datadir import DataDir
from ..core.base.errors import BadInput
from ..core.base.strictjson import dumps
from ..core.identity.identities import Identities
from ..core.network import identityexport, inviteqr, invitestate
from ..schemas import identity as s
from ..schemas.invites import ImportOwnIn, ImportOwnOut, InviteIn, InviteOut, IssuedList
from ..web.api import Blueprint

blp = Blueprint("invites", __name__, description="Invites, and an identity on several nodes")


def _dd() -> DataDir:
    return current_app.config["DIWAN"]  # type: ignore[no-any-return]


def own_identity(dd: DataDir, identity: str | None) -> str:
    """``identity``, or the node's only own identity; :class:`BadInput` if it has several."""
    if identity:
        return identity
    own = Identities(dd).own_fingerprints()
    if len(own) != 1:
        raise BadInput(f"choose the own identity (this node has {len(own)})", field="identity")
    return own[0]


@blp.route("/invites", methods=["POST"])
@blp.arguments(InviteIn)
@blp.response(200, InviteOut)
def make_invite(body: dict[str, Any]) -> dict[str, Any]:
    """Make an invite for an own identity, signed with its key (the password opens it):
    the invite string and its QR code (SVG)."""
    dd = _dd()
    fp = own_identity(dd, body.get("identity"))
    seed = Identities(dd).open_seed(fp, body["password"])
    text, invite = invitestate.make(dd, fp, seed, token=body["one_time_token"],
                                    expiry=body.get("expires_in"))
    return {"invite": text, **invite.to_dict(), "qr_svg": inviteqr.svg(text)}


@blp.route("/invites", methods=["GET"])
@blp.response(200, IssuedList)
def list_invites() -> dict[str, Any]:
    """The invites with a one-time token this node made: waiting, used (by whom) or expired."""
    return {"invites": invitestate.issued(_dd())}


@blp.route("/identities/<fp>/export", methods=["GET"])
@blp.arguments(s.FingerprintPath, location="view_args")
@blp.response(200)
def export_identity(path: dict[str, str], fp: str) -> Any:
    """The identity export file of an own identity (its seed sealed by its password, its
    .pub, settings and this node's addresses), to import on another node of yours."""
    raw = identityexport.export_identity(_dd(), path["fp"])
    return current_app.response_class(raw, mimetype="application/json")


@blp.route("/identities/imports", methods=["POST"])
@blp.arguments(ImportOwnIn)
@blp.response(200, ImportOwnOut)
def import_identity(body: dict[str, Any]) -> dict[str, Any]:
    """Make this node another node of an own identity from its export file (the password
    certifies this node's new device key); it then pulls the feed from the other nodes."""
    return identityexport.import_identity(_dd(), dumps(body["export"]).encode("utf-8"),
                                          body["password"])
