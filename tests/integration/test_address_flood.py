"""One address cannot hold the peer port (review finding S3), against real gunicorn.

Gunicorn's worker stops accepting once it holds ``worker_connections`` (1,000)
connections; before ``peer_connections_per_address`` one address that opened
that many idle connections per worker left every other client in the listen
queue until ``client_deadline`` dropped them, and opened them again. Now one
address (IPv4, IPv6 /64) holds at most that many per worker process: the rest
are answered 503 and closed at once, other addresses are served. And a client
that asks for a page and never reads it holds a thread for at most
``client_deadline`` per write. Other addresses are real: 127.0.0.2 is loopback too.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network import exchange
from app.core.posts import codec
from app.core.posts.index import Index
from app.core.posts.ingest import Ingestor

from .conftest import NodeFactory
from .harness import LOOPBACK, Node

OTHER = "127.0.0.2"  # another address on the loopback network
# The edge test's own address, so that no other connection from 127.0.0.1 (the
# harness's health checks, the node's own) counts against the limit it tests.
MINE = "127.0.0.3"
WORKER_CONNECTIONS = 1000  # gunicorn's default, per worker


def _connect(port: int, source: str = LOOPBACK, timeout: float = 5) -> socket.socket:
    return socket.create_connection((LOOPBACK, port), timeout=timeout,
                                    source_address=(source, 0))


def _health(port: int, source: str, timeout: float = 2) -> bytes:
    """The status line of ``GET /health`` on a fresh connection from ``source``."""
    with _connect(port, source, timeout) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while b"\r\n" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
        return answer.split(b"\r\n", 1)[0]


@contextmanager
def _idle(port: int, count: int, source: str = LOOPBACK) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = [stack.enter_context(_connect(port, source)) for _ in range(count)]
        yield socks


def _enough_fds(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"needs {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _answered_503(sock: socket.socket) -> bool:
    sock.settimeout(5)
    answer = b""
    try:
        while chunk := sock.recv(4096):
            answer += chunk
    except OSError:
        pass
    return answer.startswith(b"HTTP/1.1 503 ") and b"peer_connections_per_address" in answer


def test_one_address_cannot_fill_the_peer_port(make_node: NodeFactory) -> None:
    workers = 2  # the shipped defaults, client_deadline 10 s included
    flood = workers * WORKER_CONNECTIONS + 100
    _enough_fds(flood + 200)
    node = make_node(workers=workers, threads=4)
    assert node.peer_port is not None
    with _idle(node.peer_port, flood) as socks:
        for _ in range(3):  # answered well before client_deadline frees anything
            assert _health(node.peer_port, OTHER).startswith(b"HTTP/1.1 200 ")
        refused = sum(_answered_503(sock) for sock in socks[-20:])
        assert refused == 20


def test_connections_per_address_at_the_edge(make_node: NodeFactory) -> None:
    limit = 4
    node = make_node(workers=1, threads=2, settings={"peer_connections_per_address": limit})
    assert node.peer_port is not None
    with _idle(node.peer_port, limit, MINE) as held:
        # The listen queue is first in, first out: once a later connection is answered,
        # the held ones were accepted and counted (not merely queued; a fixed 0.5 s sleep
        # was not always enough under load).
        assert _health(node.peer_port, OTHER, timeout=30).startswith(b"HTTP/1.1 200 ")
        with _connect(node.peer_port, MINE) as over:
            assert _answered_503(over)
        for sock in held:  # the held ones are open and unanswered (client_deadline 10 s)
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(1)
        assert _health(node.peer_port, OTHER).startswith(b"HTTP/1.1 200 ")
        held[0].close()  # its slot comes back once the worker sees it closed
        deadline = time.monotonic() + 30
        while not (answer := _health(node.peer_port, MINE)).startswith(b"HTTP/1.1 200 "):
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert time.monotonic() < deadline, "the closed connection's slot never came back"
            time.sleep(0.1)


def _big_feed(root: Path, posts: int, size: int) -> tuple[str, keys.PublicKey]:
    dd = DataDir(root, environ={})
    dd.initialise()
    ids = Identities(dd)
    fp = ids.create("a long password here")
    seed = ids.open_seed(fp, "a long password here")
    now = int(time.time()) - 3600
    raws = [codec.build_post(seed, {"TEXT": f"{i} " + "x" * size, "CREATED_TIME": now + i})
            for i in range(posts)]
    Ingestor(dd, index=Index(dd)).ingest_many(raws, author=fp)
    return fp, keys.parse_pub(ids.pub_path(fp).read_bytes())


def _feed_request(owner: keys.PublicKey, limit: int) -> bytes:
    seed, transport = crypto.new_signing_seed(), crypto.new_transport_secret()
    pub = keys.certify(seed, crypto.transport_public(transport))
    asker = exchange.OwnKeys(fp=pub.fingerprint, pub_document=pub.to_bytes(),
                             transport_secret=transport)
    body, _ = exchange.build_request(asker=asker, owner_fp=owner.fingerprint,
                                     owner_transport=owner.transport_public, after=0,
                                     limit=limit, now=int(time.time()))
    return body


def test_clients_that_never_read_do_not_hold_the_threads(make_node: NodeFactory,
                                                         tmp_path: Path) -> None:
    deadline, workers, threads = 2, 1, 2
    fp, owner = _big_feed(tmp_path / "node", posts=40, size=100_000)  # ~4 MB per page
    node = make_node(workers=workers, threads=threads, settings={
        "client_deadline": deadline, "budget_asker_bytes": 2**40})
    assert node.peer_port is not None
    readers = []
    with ExitStack() as stack:
        for _ in range(2 * workers * threads):  # ask for a page and never read it
            body = _feed_request(owner, 40)
            sock = stack.enter_context(_connect(node.peer_port, timeout=deadline + 10))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"POST /feeds/{fp} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         f"application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
                         .encode() + body)
            readers.append(sock)
        # every thread was stuck writing; each write gives up after client_deadline
        assert _health(node.peer_port, OTHER, timeout=2 * deadline + 5).startswith(
            b"HTTP/1.1 200 ")
        for sock in readers:  # the node gave up: a part of the page, then a reset
            got = b""
            with pytest.raises(ConnectionResetError):
                while chunk := sock.recv(65536):
                    got += chunk
            assert got.startswith(b"HTTP/1.1 200 ") and len(got) < 4_000_000


def _ask_health(sock: socket.socket) -> bytes:
    """One ``GET /health`` on a kept-alive connection: the whole answer's head."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length and (chunk := sock.recv(4096)):
        body += chunk
    return head.lower()


def test_a_kept_alive_connection_carries_peer_keepalive_requests(
        make_node: NodeFactory) -> None:
    """Its last request is answered with Connection: close and the node closes it, so
    kept-alive peers are spread over the workers again (one worker holding every
    connection used one core: bench_peer's rounds went 2x apart)."""
    node = make_node(workers=1, threads=2)  # the default: 100 requests
    assert node.peer_port is not None
    with _connect(node.peer_port) as sock:
        heads = [_ask_health(sock) for _ in range(100)]
        assert [b"connection: close" in h for h in heads] == [False] * 99 + [True]
        assert all(h.startswith(b"http/1.1 200 ") for h in heads)
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the node after the 100th answer


def test_peer_keepalive_requests_at_its_edge(make_node: NodeFactory) -> None:
    """At 1, every answer closes its connection."""
    node = make_node(workers=1, threads=2, settings={"peer_keepalive_requests": 1})
    assert node.peer_port is not None
    with _connect(node.peer_port) as sock:
        assert b"connection: close" in _ask_health(sock)
        sock.settimeout(5)
        assert sock.recv(1) == b""


def _connections_per_worker(node: Node, port: int) -> list[int]:
    """Established connections to ``port`` each peer worker holds (from /proc), sorted."""
    return sorted(_connections_by_worker(node, port).values())


def _connections_by_worker(node: Node, port: int) -> dict[int, int]:
    """{worker pid: established connections to ``port`` it holds} (from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])  # ESTABLISHED, local port = the peer port
    master = node.main_pid("peer")
    counts = {}
    for pid in node.group_pids("peer"):
        if pid == master:
            continue
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            held += target.startswith("socket:[") and target[8:-1] in inodes
        counts[pid] = held
    return counts


# 250 ms, not the default 20: on a loaded machine (the suite's other worker) the other
# gunicorn worker can take longer than 20 ms to accept, and a worker that had to take a
# connection itself stops stepping aside for a while (the test below), by design.
@pytest.mark.parametrize("balance_ms, balanced", [(250, True), (0, False)])
def test_new_connections_go_to_the_worker_holding_fewest(
        make_node: NodeFactory, balance_ms: int, balanced: bool) -> None:
    """Twelve kept-alive connections, opened one after another, end up six on each of
    two workers. At the setting's edge, 0 (off), all are served, placed as the workers
    happen to wake (all or most on one worker, one core, was what bench_peer measured)."""
    node = make_node(workers=2, threads=2, settings={"peer_accept_balance_ms": balance_ms})
    assert node.peer_port is not None
    with ExitStack() as stack:
        for _ in range(12):
            sock = stack.enter_context(_connect(node.peer_port))
            assert _ask_health(sock).startswith(b"http/1.1 200 ")
        counts = _connections_per_worker(node, node.peer_port)
        assert sum(counts) == 12 and len(counts) == 2
        if balanced:
            assert counts == [6, 6]


def test_a_stuck_worker_delays_a_queue_of_connections_once(make_node: NodeFactory) -> None:
    """The worker holding more connections steps aside for one spell of a busy listener,
    not once per queued connection: with the other worker stopped (SIGSTOP) and the
    setting at its largest (1 s), five connections sent at once are all answered after
    about 1 s; each waited 1 s more than the one before (the fifth 5 s) before the fix
    (found by the end-of-session tester)."""
    node = make_node(workers=2, threads=2, settings={"peer_accept_balance_ms": 1000})
    assert node.peer_port is not None
    with ExitStack() as stack:
        first = stack.enter_context(_connect(node.peer_port))
        assert _ask_health(first).startswith(b"http/1.1 200 ")
        counts = _connections_by_worker(node, node.peer_port)
        assert sorted(counts.values()) == [0, 1]
        idle = next(pid for pid, n in counts.items() if n == 0)
        os.kill(idle, signal.SIGSTOP)
        stack.callback(os.kill, idle, signal.SIGCONT)
        queued = [stack.enter_context(_connect(node.peer_port, timeout=3.5)) for _ in range(5)]
        for sock in queued:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 3.5  # all within 3.5 s of sending, not the fifth at 5 s
        for sock in queued:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            assert sock.recv(12) == b"HTTP/1.1 200"
