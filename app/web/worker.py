"""The peer app's gunicorn worker: whole requests are read before a thread is given one.

Gunicorn's ``gthread`` worker hands a connection to a thread as soon as its
first byte arrives; the thread then blocks reading the rest of the headers and
the body. A client that sends ``Content-Length: 1600`` and ten bytes holds a
thread for as long as it likes, so ``workers × threads`` such clients stop the
peer API (issue 10). :class:`PeerWorker` is ``gthread`` with one change: the
worker's event loop (no thread) reads each request, headers and body, into a
bounded buffer, and only a complete request goes to the thread pool. A
connection that has not delivered its whole request within ``client_deadline``
seconds (a setting, default 10) is answered 408 and closed. Idle keep-alive
connections are closed after gunicorn's ``keepalive`` as before.

The buffer of one connection is bounded by gunicorn's request line and header
limits plus ``peer_max_body``; a request whose declared body is larger is handed
on at once (the app answers 413) and its connection is not kept alive.
See ``docs/architecture.md`` (slow clients).
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from ..core.base.config import data_dir_from_env, load

HEAD_END = b"\r\n\r\n"
_408_BODY = (b'{"code":408,"status":"Request Timeout","message":"the whole request must arrive '
             b'within the node\'s client_deadline","errors":{}}')
_408 = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(_408_BODY)) + _408_BODY


class BufferedSocket:
    """A client socket with the bytes already read kept in front of it (for gunicorn's parser)."""

    def __init__(self, sock: socket.socket) -> None:
        self.raw = sock
        self.pending = bytearray()

    def recv(self, size: int, *flags: int) -> bytes:
        if self.pending:
            out = bytes(self.pending[:size])
            del self.pending[:size]
            return out
        return self.raw.recv(size, *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def request_complete(data: bytes | bytearray, max_body: int) -> tuple[bool, bool]:
    """``(complete, keep_alive_ok)`` for the bytes of one HTTP/1.x request received so far.

    Complete means the head and the whole body (by ``Content-Length`` or chunked
    framing) are there; a body declared larger than ``max_body`` or a head that
    cannot be read counts as complete at once (the app or gunicorn refuses it),
    but that connection must not be kept alive.
    """
    end = data.find(HEAD_END)
    if end < 0:
        return False, True
    head = bytes(data[:end]).lower().split(b"\r\n")
    fields = dict(line.partition(b":")[::2] for line in head[1:])
    body = data[end + len(HEAD_END):]
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        return _chunked_complete(body, max_body)
    length_text = fields.get(b"content-length", b"0").strip() or b"0"
    if not length_text.isdigit() or len(length_text) > 12:
        return True, False
    length = int(length_text)
    if length > max_body:
        return True, False
    return len(body) >= length, True


def _chunked_complete(body: bytes | bytearray, max_body: int) -> tuple[bool, bool]:
    pos = total = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            return len(body) - pos > 64, False  # a size line never ends: let the parser refuse
        size_text = bytes(body[pos:line_end]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return True, False
        total += size
        if total > max_body:
            return True, False
        if size == 0:
            rest = body[line_end + 2:]
            return rest.startswith(b"\r\n") or HEAD_END in rest, True
        pos = line_end + 2 + size + 2
        if pos > len(body):
            return False, True


class PeerWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` that reads whole requests in its event loop, with a deadline per request."""

    def init_process(self) -> None:
        settings = load(data_dir_from_env())
        self.deadline = float(settings["client_deadline"])
        self.max_body = int(settings["peer_max_body"])
        self.max_head = (self.cfg.limit_request_line + 4 + self.cfg.limit_request_fields
                         * (self.cfg.limit_request_field_size + 2))
        self.reading: dict[Any, float] = {}  # connection -> when its request must be in
        self.no_keepalive: set[Any] = set()
        super().init_process()

    def accept(self, server: Any, listener: Any) -> None:
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = TConn(self.cfg, BufferedSocket(sock), client, server)
        self.nr_conns += 1
        self.reading[conn] = time.monotonic() + self.deadline
        with self._lock:
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self.on_client_socket_readable, conn))

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        if conn not in self.reading:  # a kept-alive connection starts its next request
            with self._lock:
                try:
                    self._keep.remove(conn)
                except ValueError:  # closed by the keep-alive timeout meanwhile
                    return
            self.reading[conn] = time.monotonic() + self.deadline
        try:
            data = conn.sock.raw.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = conn.sock.pending
        buf += data
        complete, keep = request_complete(buf, self.max_body)
        if len(buf) > self.max_head + self.max_body:
            complete, keep = True, False
        if not complete:
            return
        del self.reading[conn]
        if not keep:
            self.no_keepalive.add(conn)
        with self._lock:
            self.poller.unregister(client)
        self.enqueue_req(conn)

    def handle(self, conn: Any) -> tuple[bool, Any]:
        keepalive, conn = super().handle(conn)
        if conn in self.no_keepalive:
            self.no_keepalive.discard(conn)
            return False, conn
        return keepalive, conn

    def murder_keepalived(self) -> None:
        super().murder_keepalived()
        now = time.monotonic()
        for conn in [c for c, due in self.reading.items() if due <= now]:
            try:
                conn.sock.raw.send(_408)
            except OSError:
                pass
            self._drop(conn)

    def _drop(self, conn: Any) -> None:
        self.reading.pop(conn, None)
        with self._lock:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self.nr_conns -= 1
        conn.close()
