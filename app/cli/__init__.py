"""The ``diwan`` command line (click). ``app.cli:main`` is the console script.

It calls the core directly (the data directory, the identity store); it never
goes through the HTTP API, so it works whether or not the node is running.

Adding commands: write a module here whose commands are registered on
``main`` from :mod:`app.cli.base` (``@main.command()`` or ``@main.group()``),
make them thin (parse, call the core, ``cli.emit(json_shape, human_lines)``)
and add the module to the import below. Project errors (``DiwanError``) need
no handling: the group prints ``error: <message>`` (JSON under ``--json``) and exits
with the status of its class (``EXIT_*`` in :mod:`app.cli.base`).
"""

from __future__ import annotations

from . import (  # noqa: F401  (each registers its commands)
    doctor,
    groups,
    identity,
    invites,
    network,
    node,
    open,
    posts,
    settings,
    social,
    status,
)
from .base import main

__all__ = ["main"]
