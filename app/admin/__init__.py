"""The admin API: the owner's scripts and local clients, on 127.0.0.1."""

from __future__ import annotations

from flask import Flask

from ..web.api import Api
from . import contacts, groups, identities, identity_settings, posts, social, sync


def register(api: Api, app: Flask) -> None:
    for module in (identities, identity_settings, groups, posts, social, contacts, sync):
        api.register_blueprint(module.blp)
