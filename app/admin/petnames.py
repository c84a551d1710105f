"""Admin routes for petnames: private names the owner gives keys (never sent to peers)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from ..core.identity.petnames import Petnames
from ..schemas import identity as s
from ..schemas.identity import PetnameIn, PetnameList, PetnameOut
from ..web.api import Blueprint

blp = Blueprint("petnames", __name__, url_prefix="/petnames",
                description="Petnames: the owner's private names for keys")


def _book() -> Petnames:
    return Petnames(current_app.config["DIWAN"])


@blp.route("")
@blp.response(200, PetnameList)
def list_petnames() -> dict[str, Any]:
    """Every petname this node holds."""
    return {"petnames": [{"fingerprint": fp, "petname": name}
                         for fp, name in sorted(_book().all().items())]}


@blp.route("/<fp>")
class PetnameItem(MethodView):
    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.arguments(PetnameIn)
    @blp.response(200, PetnameOut)
    def put(self, path: dict[str, str], body: dict[str, Any], fp: str) -> dict[str, Any]:
        """Name a key (unique across keys; 409 if another key has that name)."""
        _book().set(path["fp"], body["petname"])
        return {"fingerprint": path["fp"], "petname": body["petname"]}

    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.response(204)
    def delete(self, path: dict[str, str], fp: str) -> None:
        """Forget a key's petname (204 whether it had one or not)."""
        _book().clear(path["fp"])
