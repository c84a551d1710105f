"""Admin route for the node's health: what ``diwan doctor`` reports."""

from __future__ import annotations

from typing import Any

from ..core.upkeep.doctor import report
from ..web.api import Blueprint
from .posts import dd

blp = Blueprint("status", __name__, url_prefix="",
                description="The node's health: exposure, secrets, free space, scheduler")


@blp.route("/status")
@blp.response(200)
def status() -> dict[str, Any]:
    """``ok``, the ``problems`` found, whether the admin API is exposed, open secrets (with
    the chmod that fixes each), the data directory's free space (``disk.full`` below 1 MiB)
    and seconds since the scheduler's heartbeat."""
    return report(dd())
