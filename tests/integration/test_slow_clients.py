"""Slow clients cannot starve the peer API (issue 10, item 5), against real gunicorn.

10 × (workers × threads) connections trickle headers or bodies; a valid request
is still answered (a 2-second client timeout, not a measured time), and every
slow connection is answered 408 and closed within ``client_deadline``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import requests

from .conftest import NodeFactory

WORKERS, THREADS = 2, 4  # the shipped defaults
DEADLINE = 3
FP = "ab" * 32


def _slow(port: int, kind: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE + 5)
    head = f"POST /feeds/{FP} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if kind == "headers":  # the head never ends
        sock.sendall(head.encode())
    elif kind == "body":  # a body of 1600 bytes, 10 sent
        sock.sendall((head + "Content-Type: application/octet-stream\r\n"
                      "Content-Length: 1600\r\n\r\n").encode() + b"x" * 10)
    else:  # a chunked body that never ends
        chunk = b"a\r\n0123456789\r\n"
        sock.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunk)
    return sock


@contextmanager
def _slow_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = []
        for i in range(count):
            sock = _slow(port, ("headers", "body", "chunked")[i % 3])
            stack.callback(sock.close)
            socks.append(sock)
        yield socks


def test_slow_clients_neither_starve_the_peer_api_nor_stay_open(make_node: NodeFactory) -> None:
    # every connection here comes from 127.0.0.1: lift the per-address share
    # (tests/integration/test_address_flood.py) so that these stand for many addresses
    node = make_node(workers=WORKERS, threads=THREADS,
                     settings={"client_deadline": DEADLINE, "peer_connections_per_address": 1000})
    assert node.peer_port is not None
    with _slow_clients(node.peer_port, 10 * WORKERS * THREADS) as socks:
        for _ in range(5):  # a fresh connection each time: no kept-alive shortcut
            r = requests.get(f"{node.peer_url}/health", timeout=2)
            assert r.status_code == 200
        r = requests.post(f"{node.peer_url}/feeds/{FP}", data=b"x" * 100, timeout=2)
        assert 400 <= r.status_code < 500 and r.json()["code"] == r.status_code
        for sock in socks:  # every slow client is answered 408 and closed by the node
            answer = b""
            while chunk := sock.recv(4096):  # socket timeout DEADLINE + 5: never hangs
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]


def test_keep_alive_and_oversized_bodies_are_answered(make_node: NodeFactory) -> None:
    node = make_node(settings={"client_deadline": DEADLINE})
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{node.peer_url}/health", timeout=5).status_code == 200
        big = session.post(f"{node.peer_url}/feeds/{FP}", data=b"x" * (64 * 1024 + 1), timeout=5)
        assert big.status_code == 413
        assert session.get(f"{node.peer_url}/health", timeout=5).status_code == 200
