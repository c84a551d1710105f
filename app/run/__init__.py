"""What runs a node, shipped inside the package so an installed ``diwan up`` finds it:
the Procfile (admin, peer, scheduler) and the gunicorn settings both apps use.

Imports only ``app.core.base`` (settings, logging); runs nothing at import.
"""

from __future__ import annotations

from pathlib import Path

PROCFILE = Path(__file__).with_name("Procfile")
