"""Admin routes for groups; ``blocked`` is the reserved group whose content is ignored."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from ..core.base import names
from ..schemas import identity as s
from ..web.api import Blueprint
from .identities import store

blp = Blueprint("groups", __name__, url_prefix="/groups",
                description="Groups of identities (sub-directories of identities/)")


def _group(name: str) -> dict[str, Any]:
    return {"name": name, "members": store().members(name), "reserved": name == names.BLOCKED}


@blp.route("")
@blp.response(200, s.GroupList)
def list_groups() -> dict[str, Any]:
    """Every group with its members."""
    return {"groups": [_group(g) for g in store().groups()]}


@blp.route("/<name>")
class GroupItem(MethodView):
    @blp.arguments(s.GroupPath, location="view_args")
    @blp.response(200, s.GroupOut)
    def get(self, path: dict[str, str], name: str) -> dict[str, Any]:
        """One group and its members."""
        store().group_dir(path["name"])
        return _group(path["name"])

    @blp.arguments(s.GroupPath, location="view_args")
    @blp.response(200, s.Ok)
    def put(self, path: dict[str, str], name: str) -> dict[str, Any]:
        """Create a group (no-op if it exists)."""
        return {"ok": True, "changed": store().create_group(path["name"])}

    @blp.arguments(s.GroupPath, location="view_args")
    @blp.response(204)
    def delete(self, path: dict[str, str], name: str) -> None:
        """Delete a group (its copies of .pub files, never the identities themselves)."""
        store().delete_group(path["name"])


@blp.route("/<name>/<fp>")
class GroupMember(MethodView):
    @blp.arguments(s.GroupMemberPath, location="view_args")
    @blp.response(200, s.Ok)
    def put(self, path: dict[str, str], name: str, fp: str) -> dict[str, Any]:
        """Add a known identity to a group."""
        return {"ok": True, "changed": store().add_member(path["name"], path["fp"])}

    @blp.arguments(s.GroupMemberPath, location="view_args")
    @blp.response(204)
    def delete(self, path: dict[str, str], name: str, fp: str) -> None:
        """Remove an identity from a group."""
        store().remove_member(path["name"], path["fp"])
