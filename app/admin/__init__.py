"""The admin API: the owner's scripts and local clients, on 127.0.0.1."""

from __future__ import annotations

import re

from flask import Flask, current_app, request

from ..core.identity.petnames import resolve
from ..web.api import Api
from . import (
    contacts,
    groups,
    identities,
    identity_settings,
    invites,
    petnames,
    posts,
    social,
    status,
    sync,
)

_PREFIX_RE = re.compile(r"[0-9a-f]{8,63}")


def resolve_path_prefixes() -> None:
    """A path's ``fp`` may be a unique hex prefix of at least 8 characters of a key this
    node holds; it becomes the full fingerprint before the route sees it (ambiguous: 400
    listing the candidates, unknown: 404). Runs after the admin guard, so only the owner
    can ask; the peer port never resolves prefixes."""
    args = request.view_args
    value = args.get("fp") if args else None
    if isinstance(value, str) and _PREFIX_RE.fullmatch(value):
        args["fp"] = resolve(current_app.config["DIWAN"], value, field="fp")  # type: ignore[index]


def register(api: Api, app: Flask) -> None:
    """Register the admin blueprints and the prefix resolution on ``app``."""
    for module in (identities, identity_settings, groups, posts, social, contacts, petnames,
                   sync, status, invites):
        api.register_blueprint(module.blp)
    app.before_request(resolve_path_prefixes)
