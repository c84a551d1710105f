"""Admin routes for per-identity settings: with whom an own identity shares its comments."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields

from ..core.base import names
from ..core.base.errors import NotFound
from ..core.identity.identities import Identities
from ..core.network.feeds import get_share_comments_group, set_share_comments_group
from ..schemas.identity import FingerprintPath, Pattern
from ..web.api import Blueprint

blp = Blueprint("identity_settings", __name__, url_prefix="/identities",
                description="Per-identity settings")


class SettingsIn(Schema):
    share_comments_with = fields.String(
        required=True, allow_none=True,
        validate=Pattern(names.GROUP_RE.pattern, error="a group name"),
        metadata={"description": "a group whose members also receive this identity's "
                                 "comments when they sync (null: only the addressees)"})


class SettingsOut(Schema):
    fingerprint = fields.String()
    share_comments_with = fields.String(allow_none=True)


@blp.route("/<fp>/settings")
class IdentitySettings(MethodView):
    @blp.arguments(FingerprintPath, location="view_args")
    @blp.response(200, SettingsOut)
    def get(self, path: dict[str, str], fp: str) -> dict[str, Any]:
        """An own identity's settings."""
        dd = current_app.config["DIWAN"]
        if not Identities(dd).is_own(path["fp"]):
            raise NotFound(f"{path['fp']} is not one of this node's own identities",
                           field="fingerprint")
        return {"fingerprint": path["fp"],
                "share_comments_with": get_share_comments_group(dd, path["fp"])}

    @blp.arguments(FingerprintPath, location="view_args")
    @blp.arguments(SettingsIn)
    @blp.response(200, SettingsOut)
    def put(self, path: dict[str, str], body: dict[str, Any], fp: str) -> dict[str, Any]:
        """Share comments with a group ("Ahmed can choose to broadcast comments to Camal")."""
        dd = current_app.config["DIWAN"]
        set_share_comments_group(dd, path["fp"], body["share_comments_with"])
        return {"fingerprint": path["fp"],
                "share_comments_with": get_share_comments_group(dd, path["fp"])}
