"""Real HTTP for the sync and contact API tests: WSGI apps served on 127.0.0.1 ephemeral ports.

:func:`serving` runs any WSGI app (a node's real peer app, or a hostile one) with
werkzeug's server in a thread; :func:`copy_identities` gives a fresh data directory
copies of own identities made once per module (Argon2id runs once).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from app.core.base.datadir import DataDir

WsgiApp = Callable[..., Any]


@contextlib.contextmanager
def serving(app: WsgiApp) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port for the block; yields its ``http://`` address."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-node", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def closed_port_address() -> str:
    """An address where nothing listens (a port that was just free)."""
    server = make_server("127.0.0.1", 0, lambda env, start: [])
    port = server.server_port
    server.server_close()
    return f"http://127.0.0.1:{port}"


def copy_identities(template: DataDir, target: Path, own: Iterable[str]) -> Path:
    """Copy own identities' files from ``template`` into a new data directory at ``target``."""
    (target / "identities").mkdir(parents=True, mode=0o700)
    for fp in own:
        for name in (fp, f"{fp}.pub"):
            shutil.copy2(template.identities / name, target / "identities" / name)
    return target
