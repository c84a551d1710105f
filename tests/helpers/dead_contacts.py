"""A node following live contacts (a real peer app) and many dead ones (sockets that never answer).

Used by tests/core/network/test_rounds.py and bench/bench_dead_contacts.py.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from app import create_peer_app
from app.core.base.datadir import DataDir
from app.core.base.statefile import StateFile
from app.core.identity.identities import Identities
from app.core.posts.reconcile import open_index

PASSWORD = "pw-rounds-long-enough"


@dataclass
class Crowd:
    node: DataDir
    live: list[str]
    dead: list[str]


def make_template(root: Path, owners: int) -> tuple[DataDir, str, list[str]]:
    """A data directory holding the follower and ``owners`` live owners (Argon2id runs here)."""
    dd = DataDir(root, environ={})
    dd.initialise()
    ids = Identities(dd)
    me = ids.create(PASSWORD)
    return dd, me, [ids.create(PASSWORD) for _ in range(owners)]


@contextlib.contextmanager
def never_answering() -> Iterator[str]:
    """An address whose socket accepts nothing and answers nothing."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextlib.contextmanager
def live_owners(template: DataDir, owners: list[str], root: Path) -> Iterator[str]:
    """The owners' node, its real peer app served on loopback; yields its address."""
    _copy(template, root, owners, private=True)
    app = create_peer_app({"data_dir": str(root)})
    # the post index made now, not by the first sync request: on a loaded machine making
    # it (schema, WAL) under four concurrent first requests took the 1 s sync_timeout
    open_index(app.config["DIWAN"]).count()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def crowd(template: DataDir, me: str, owners: list[str], root: Path, live_address: str,
          dead_address: str, dead: int, **settings: Any) -> Crowd:
    """A follower's node: ``owners`` at the live address, ``dead`` contacts that failed before."""
    _copy(template, root, [me], private=True)
    _copy(template, root, owners, private=False)
    node = DataDir(root, settings, environ={})
    node.initialise()
    dead_fps = [secrets.token_hex(32) for _ in range(dead)]
    now = time.time()
    with StateFile(node, "contacts").update() as data:
        for fp in owners:
            data[fp] = {"addresses": [live_address], "identity": me, "added": now}
        for fp in dead_fps:
            data[fp] = {"addresses": [dead_address], "identity": me, "added": now}
    with StateFile(node, "sync_status").update() as data:
        for i, fp in enumerate(dead_fps):  # failed last time; the back-off is over
            data[fp] = {"last_attempt": now - 3600, "failures": 1, "last_error": "timed out",
                        "next_attempt": now - 60 - i, "address": dead_address, "identity": me}
    return Crowd(node, owners, dead_fps)


def _copy(template: DataDir, root: Path, fps: list[str], *, private: bool) -> None:
    (root / "identities").mkdir(parents=True, mode=0o700, exist_ok=True)
    root.chmod(0o700)
    for fp in fps:
        for name in ([fp] if private else []) + [f"{fp}.pub"]:
            shutil.copy2(template.identities / name, root / "identities" / name)
