"""A followed owner whose real peer app notes every feed request, and a node following it.

Used by tests/integration/test_wakeup*.py: the owner's data directory is made
here, its real peer app (``create_peer_app``) is served on 127.0.0.1 by
werkzeug, and the time of every ``POST /feeds/<fp>`` it answers is kept in
:attr:`CountingPeer.feeds`; :func:`follower_dir` makes a data directory whose
own identity follows that owner, ready for a real node to start in.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from app import create_peer_app
from app.core.base.datadir import DataDir
from app.core.base.statefile import StateFile
from app.core.identity.identities import Identities

PW = "pw-wakeup-long-enough"


class CountingPeer:
    """The real peer app of the owner ``fp`` in ``root``, on 127.0.0.1, timing feed requests."""

    def __init__(self, root: Path, fp: str, document: bytes) -> None:
        app = create_peer_app({"data_dir": str(root)})
        self.fp, self.document = fp, document
        self.feeds: list[float] = []  # unix seconds of every feed request, in order

        def counting(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].startswith("/feeds/"):
                self.feeds.append(time.time())
            return app(environ, start)

        self.server = make_server("127.0.0.1", 0, counting, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def counting_owner(root: Path) -> Iterator[CountingPeer]:
    """An owner with one identity in ``root``, served by a :class:`CountingPeer`."""
    dd = DataDir(root, environ={})
    dd.initialise()
    ids = Identities(dd)
    fp = ids.create(PW)
    peer = CountingPeer(dd.root, fp, ids.pub_document(fp))
    try:
        yield peer
    finally:
        peer.close()


def follower_dir(root: Path, owner: CountingPeer) -> None:
    """A data directory in ``root`` whose own identity follows ``owner`` (key imported)."""
    dd = DataDir(root, environ={})
    dd.initialise()
    ids = Identities(dd)
    me = ids.create(PW)
    ids.import_pub(owner.document)
    with StateFile(dd, "contacts").update() as data:
        data[owner.fp] = {"addresses": [owner.url], "identity": me, "added": time.time()}


def wait_for(what: Callable[[], bool], seconds: float) -> bool:
    """Poll ``what`` every 50 ms for up to ``seconds``; its last answer."""
    limit = time.monotonic() + seconds
    while time.monotonic() < limit:
        if what():
            return True
        time.sleep(0.05)
    return what()
