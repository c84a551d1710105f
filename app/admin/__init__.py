"""The admin API: the owner's scripts and local clients, on 127.0.0.1."""

from __future__ import annotations

from flask import Flask

from ..web.api import Api
from . import groups, identities


def register(api: Api, app: Flask) -> None:
    for module in (identities, groups):
        api.register_blueprint(module.blp)
