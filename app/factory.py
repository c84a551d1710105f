"""The two Flask apps and what they share: the factories behind ``app:create_admin_app()``
and ``app:create_peer_app()`` (:mod:`app` names them lazily, so that importing the core,
the CLI or the scheduler loads no web framework).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from app.core.base.datadir import open_datadir
from app.core.base.logsetup import level_of

from .web.api import JSONProvider, add_health, make_api
from .web.request import Request, refuse_large_bodies

__all__ = ["create_admin_app", "create_peer_app"]


def _base_app(name: str, config: Mapping[str, Any] | None, body_setting: str) -> Flask:
    overrides = dict(config or {})
    data_dir = overrides.pop("data_dir", None)
    dd = open_datadir(data_dir, overrides)
    app = Flask(name, static_folder=None)  # no static route: nothing is served from disk
    app.json = JSONProvider(app)  # one bounded parser in, strict JSON (no NaN) out
    app.request_class = Request  # 413 for chunked bodies over the limit too
    app.config["DIWAN"] = dd
    app.config["MAX_CONTENT_LENGTH"] = dd.settings[body_setting]
    app.config["MAX_FORM_MEMORY_SIZE"] = dd.settings[body_setting]
    app.config["JSON_SORT_KEYS"] = False
    app.before_request(refuse_large_bodies)  # 413 on every route, read or not
    role = name.rsplit(".", 1)[-1]
    logging.getLogger("diwan").setLevel(level_of(dd.settings, role).upper())
    return app


def create_admin_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The admin API and the node's own web pages at ``/`` (bind it to loopback only)."""
    from . import admin, pages
    from .web.guard import check_admin_request

    app = _base_app("diwan.admin", config, "admin_max_body")
    api = make_api(app, "Diwan admin API",
                   "The node owner's API. Every request needs 'Authorization: Bearer <token>' "
                   "with the token from <data dir>/admin.token, and a loopback Host.")
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]
    app.before_request(check_admin_request)
    admin.register(api, app)
    pages.register(app)
    add_health(api, "admin")
    return app


def create_peer_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The peer API (other nodes reach it; everything it receives is hostile)."""
    from . import peer
    from .peer import fastpath

    app = _base_app("diwan.peer", config, "peer_max_body")
    api = make_api(app, "Diwan peer API", "What other nodes may ask this node.")
    peer.register(api, app)
    add_health(api, "peer")
    fastpath.install(app)
    return app
