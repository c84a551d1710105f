"""The peer API: what other nodes may ask. Everything a stranger sends here is hostile."""

from __future__ import annotations

from flask import Flask

from ..web.api import Api
from . import feeds, keyserver


def register(api: Api, app: Flask) -> None:
    api.register_blueprint(keyserver.blp)
    api.register_blueprint(feeds.blp)
