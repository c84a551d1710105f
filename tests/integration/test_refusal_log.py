"""Every answer the peer worker's loop sends itself writes an access-log line (found by
the end-of-stop tester: 408, 413 and 503 left no trace, so a flood of them was
invisible). Real gunicorn, real sockets, the node's own log file."""

from __future__ import annotations

import re
import socket
import time

import pytest

from .conftest import NodeFactory

pytestmark = [pytest.mark.integration]


def _ask(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        return s.recv(4096)


def test_408_413_and_503_from_the_loop_each_write_an_access_log_line(
        make_node: NodeFactory) -> None:
    node = make_node("n", settings={"client_deadline": 2, "peer_connections_per_address": 2})
    port = node.peer_port
    assert port is not None
    node.session.close()  # the harness's kept-alive connection would take a slot
    time.sleep(0.3)
    big = b"POST /feeds/" + b"ab" * 32 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n"
    assert _ask(port, big).startswith(b"HTTP/1.1 413 ")
    assert _ask(port, b"GET /health HTTP/1.1\r\nHo").startswith(b"HTTP/1.1 408 ")  # 2 s
    with socket.create_connection(("127.0.0.1", port), timeout=5) as one, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as two:
        for held in (one, two):  # the address's two connections, each mid-request
            held.sendall(b"GET /health HTTP/1.1\r\nHo")
        time.sleep(0.2)
        assert _ask(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 503 ")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = {status for status in ("408", "413", "503")
                 if re.search(rf'127\.0\.0\.1 "- - -" {status} \d+ -', node.log("peer"))}
        if found == {"408", "413", "503"}:
            break
        time.sleep(0.1)
    assert found == {"408", "413", "503"}, node.log("peer")[-3000:]


def test_a_head_of_bare_line_feeds_gets_a_400_at_once(make_node: NodeFactory) -> None:
    """Not a 408 after client_deadline (found by the stop 21 tester)."""
    node = make_node("n", settings={"client_deadline": 30})
    assert node.peer_port is not None
    started = time.monotonic()
    answer = _ask(node.peer_port, b"GET /health HTTP/1.1\nHost: x\n\n", wait=20)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert time.monotonic() - started < 20  # well before the deadline (30 s)
