"""What the peer worker's event loop answers itself, and the access-log line of each.

The loop of :class:`app.web.worker.PeerWorker` refuses three kinds of connection
before a thread or the app sees them: 408 (the request did not arrive within
``client_deadline``), 413 (a declared body over ``peer_max_body``), 400 (a head whose
lines end with a bare LF, which gunicorn's parser would wait on) and 503 (an address
over ``peer_connections_per_address``). Each answer is fixed JSON in the apps' one
error shape, and each writes one access-log line like the app's own
(``<address> "- - -" <status> <bytes> -``: the request line is unknown or not
read), so a flood of them leaves a trace (found by the end-of-stop tester: they
wrote none).
"""

from __future__ import annotations

import socket
import struct
from typing import Any


def _answer(status: int, reason: str, code: str, message: bytes, extra: bytes = b"") -> bytes:
    body = (b'{"code":%d,"status":"%s","message":"%s","errors":{}}'
            % (status, code.encode(), message))
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\n%s"
            b"Content-Length: %d\r\n\r\n" % (status, reason.encode(), extra, len(body))) + body


TIMEOUT = _answer(408, "Request Timeout", "request_timeout",
                  b"the whole request must arrive within the node's client_deadline")
TOO_LARGE = _answer(413, "Request Entity Too Large", "request_entity_too_large",
                    b"the body is larger than this node accepts (peer_max_body)")
BARE_LF = _answer(400, "Bad Request", "bad_request",
                  b"request lines must end with CRLF (RFC 9112 2.2)")
BUSY = _answer(503, "Service Unavailable", "service_unavailable",
               b"too many connections from your address (peer_connections_per_address)",
               b"Retry-After: 5\r\n")


def log(glog: Any, client: Any, status: int, sent: int) -> None:
    """One access-log line for a refusal (nothing when the access log is off)."""
    if not glog.cfg.accesslog:
        return
    host = str(client[0]) if isinstance(client, tuple) and client else "-"
    glog.access_log.info('%s "- - -" %s %s -', host, status, sent)


def reset(sock: socket.socket) -> None:
    """Make the coming close a reset (SO_LINGER 0): the unsent rest of an answer is
    dropped at once instead of waiting in the kernel for a client that does not read."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


def refuse_busy(sock: socket.socket) -> int:
    """Answer 503 on a connection over its address's share and close it (never blocks:
    what the client already sent is read away first, so the close does not reset the
    answer away). Returns the bytes sent."""
    sent = 0
    try:
        sock.setblocking(False)
        try:
            sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            pass
        sent = sock.send(BUSY)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()
    return sent
