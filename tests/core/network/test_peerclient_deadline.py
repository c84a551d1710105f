"""The overall deadline of a request to another node holds in every phase of the answer.

``peerclient.call`` promises a timeout per socket operation *and* an overall deadline
("a peer trickling one byte at a time is cut off"). Found by the tester of issues 8
and 14: the deadline was checked only between pieces of the body, so a node (any
address a sync asks: a contact's, one it told in ``reach``, an invite's ``reply``)
that trickled its status line or headers, a byte per second, held the syncing thread
for as long as it liked. Real sockets on 127.0.0.1; no time is asserted: the call
must end while the node is still trickling.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from app.core.base.errors import PeerError
from app.core.network import peerclient

TRICKLE_SECONDS = 20.0  # how long the hostile node would go on
TIMEOUT = 1.0


@pytest.fixture(params=["status", "headers", "body"])
def trickler(request: pytest.FixtureRequest) -> Iterator[tuple[str, threading.Event]]:
    """A node that trickles its status line, its headers or its body (one byte at a time,
    each well within the per-operation timeout)."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop, finished = threading.Event(), threading.Event()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
    prefix = {"status": b"", "headers": head, "body": head + b"\r\n"}[request.param]
    endless = {"status": b"HTTP/1.1 200 OK\r\n", "headers": b"X-A: 1\r\n",
               "body": b"a"}[request.param]

    def serve() -> None:
        try:
            trickle()
        finally:
            finished.set()

    def trickle() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(prefix)
            end = time.monotonic() + TRICKLE_SECONDS
            while not stop.is_set() and time.monotonic() < end:
                for byte in endless:
                    try:
                        conn.send(bytes([byte]))
                    except OSError:
                        return
                    if stop.wait(TIMEOUT / 4):
                        return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}", finished
    stop.set()
    thread.join(5)
    srv.close()


def test_a_trickling_node_is_cut_off_at_the_deadline(
        trickler: tuple[str, threading.Event]) -> None:
    address, finished = trickler
    session = peerclient.new_session()
    with pytest.raises(PeerError, match="too long|within"):
        peerclient.call(session, "POST", f"{address}/feeds/x", timeout=TIMEOUT,
                        max_bytes=10**6, data=b"x")
    assert not finished.is_set()  # cut off while the node was still trickling
    session.close()
