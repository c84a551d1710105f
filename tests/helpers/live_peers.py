"""Nodes whose real peer app serves on a 127.0.0.1 port in a thread, with an own identity.

:func:`live_peer` makes a data directory whose ``peer_host``/``peer_port`` are the
address it is served at (so invites and ``reply`` addresses name it), creates an
own identity (optional) and serves its peer app with werkzeug until the block ends;
``node.stop()`` stops it early (a node that went away).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from app import create_peer_app
from app.core.base.datadir import DataDir
from app.core.identity.identities import Identities
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.integration.harness import free_port


@dataclass
class LivePeer:
    dd: DataDir
    fp: str | None
    address: str
    server: BaseWSGIServer = field(repr=False)
    thread: threading.Thread = field(repr=False)
    stopped: bool = False

    @property
    def ids(self) -> Identities:
        return Identities(self.dd)

    def seed(self) -> bytes:
        assert self.fp is not None
        return self.ids.open_seed(self.fp, PASSWORD)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(10)


@contextlib.contextmanager
def live_peer(root: Path, *, identity: bool = True, **settings: Any) -> Iterator[LivePeer]:
    """A node at ``root`` served on a free port for the block (see the module docstring)."""
    port = free_port()
    overrides = {"peer_host": "127.0.0.1", "peer_port": port, **settings}
    dd = make_datadir(root, **overrides)
    fp = Identities(dd).create(PASSWORD) if identity else None
    app = create_peer_app({"data_dir": str(dd.root), **overrides})
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-peer", daemon=True)
    thread.start()
    node = LivePeer(dd, fp, f"http://127.0.0.1:{port}", server, thread)
    try:
        yield node
    finally:
        node.stop()
