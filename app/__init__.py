"""Diwan's two web apps. Gunicorn runs ``app:create_admin_app()`` and ``app:create_peer_app()``.

Settings come from defaults, then ``<data dir>/diwan.toml``, then ``DIWAN_*``
environment variables, then the ``config`` mapping given here (tests use it;
``data_dir`` in it picks the directory).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_admin_app", "create_peer_app"]


# The factories live in app/factory.py and are imported only when called: every module of
# the package (the core, the CLI, the scheduler, the signature-check helpers) is imported
# through this file, and importing Flask, flask-smorest and their dependencies here cost
# each of those processes ~25 MiB of resident memory (bench/README.md, "Memory").

def create_admin_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The admin API and the node's own web pages at ``/`` (bind it to loopback only)."""
    from .factory import create_admin_app as create
    return create(config)


def create_peer_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The peer API (other nodes reach it; everything it receives is hostile)."""
    from .factory import create_peer_app as create
    return create(config)
