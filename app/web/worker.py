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
connections are closed after gunicorn's ``keepalive`` as before, and a connection's
``peer_keepalive_requests``-th request (default 100) is answered with ``Connection:
close``: connections that stay open are taken again by whichever worker accepts first,
so a few busy peers on kept-alive connections cannot all stay on one worker (one core).
And a worker that holds more connections than another leaves a new connection to the
other for up to ``peer_accept_balance_ms`` (:mod:`app.run.acceptbalance`).

One source address (an IPv4 address, an IPv6 /64) may hold at most
``peer_connections_per_address`` connections open in one worker process (a
setting, default 32); a connection past that is answered 503 and closed from the
loop at once, so one address can never fill the worker's ``worker_connections``
and keep everyone else waiting in the listen queue (review finding S3). Once a
thread has a request, every write of the answer must be taken by the client
within ``client_deadline`` seconds (a socket timeout), so clients that ask and
never read cannot hold the threads either.

The buffer of one connection is bounded by gunicorn's request line and header
limits plus ``peer_max_body``; a request whose body is larger is answered 413
from the loop at once (the rest of its body is read and dropped until the client
closes, within the deadline), and one whose framing cannot be read goes to
gunicorn's parser, which refuses it, and is not kept alive.
See ``docs/architecture.md`` (slow clients).
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

from ..core.base.config import data_dir_from_env, load
from ..core.network.keyserver import rate_key
from ..run import acceptbalance
from ..run.acceptbalance import DISTRUST, PAUSE
from . import refusals

HEAD_END = b"\r\n\r\n"


def address_key(client: Any) -> str:
    """The bucket a connection's peer address counts against: an IPv4 address (an
    IPv4-mapped IPv6 one too), an IPv6 /64; ``local`` for a non-IP (UNIX) socket."""
    if isinstance(client, tuple) and client:
        return rate_key(str(client[0]))
    return "local"


class CountedConn(TConn):  # type: ignore[misc]
    """A gunicorn connection that gives its address's slot back once, however it closes."""

    def __init__(self, cfg: Any, sock: Any, client: Any, server: Any,
                 release: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.release = release
        self.served = 0  # requests answered on this connection

    def close(self) -> None:
        release, self.release = self.release, None
        if release is not None:
            release()
        super().close()


class BufferedSocket:
    """A client socket with the bytes already read kept in front of it (for gunicorn's parser)."""

    def __init__(self, sock: socket.socket) -> None:
        self.raw = sock
        self.pending = bytearray()
        self.stalled = False  # a write of the answer outlived client_deadline

    def sendall(self, data: bytes, *flags: int) -> None:
        try:
            self.raw.sendall(data, *flags)
        except TimeoutError:
            self.stalled = True
            raise

    def recv(self, size: int, *flags: int) -> bytes:
        if self.pending:
            out = bytes(self.pending[:size])
            del self.pending[:size]
            return out
        return self.raw.recv(size, *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


WAIT, READY, TOO_LARGE, MALFORMED = "wait", "ready", "too_large", "malformed"
BARE_LF = "bare_lf"
_REFUSED = {TOO_LARGE: (413, refusals.TOO_LARGE), BARE_LF: (400, refusals.BARE_LF)}  # by the loop


def request_state(data: bytes | bytearray, max_body: int) -> str:
    """What the bytes of one HTTP/1.x request received so far amount to.

    :data:`READY`: the head and the whole body (by ``Content-Length`` or chunked
    framing) are there; :data:`WAIT`: more is due; :data:`TOO_LARGE`: the body
    is (declared) larger than ``max_body``; :data:`MALFORMED`: the framing
    cannot be read (gunicorn's parser answers it, and the connection closes);
    :data:`BARE_LF`: the head has an empty line ended by a bare LF, so it can never end
    (gunicorn's parser would wait for a CRLF: the loop answers 400 itself).
    """
    end = data.find(HEAD_END)
    if end < 0:  # a head ended by a bare LF cannot end later: answer now, not at the deadline
        return BARE_LF if b"\n\n" in data or b"\n\r\n" in data else WAIT
    head = bytes(data[:end]).lower().split(b"\r\n")
    fields = dict(line.partition(b":")[::2] for line in head[1:])
    body = data[end + len(HEAD_END):]
    coding = fields.get(b"transfer-encoding")
    if coding is not None:  # chunked last, as RFC 9112 6.1 wants; anything else gunicorn refuses
        codings = [c.strip() for c in coding.split(b",")]
        return _chunked_state(body, max_body) if codings[-1] == b"chunked" else MALFORMED
    length_text = fields.get(b"content-length", b"0").strip() or b"0"
    if not length_text.isdigit() or len(length_text) > 18:
        return MALFORMED
    if int(length_text) > max_body:
        return TOO_LARGE
    return READY if len(body) >= int(length_text) else WAIT


def _chunked_state(body: bytes | bytearray, max_body: int) -> str:
    pos = total = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            return MALFORMED if len(body) - pos > 64 else WAIT  # a size line never ends
        try:
            size = int(bytes(body[pos:line_end]).split(b";")[0].strip(), 16)
        except ValueError:
            return MALFORMED
        total += size
        if total > max_body:
            return TOO_LARGE
        if size == 0:
            rest = body[line_end + 2:]
            return READY if rest.startswith(b"\r\n") or HEAD_END in rest else WAIT
        pos = line_end + 2 + size + 2
        if pos > len(body):
            return WAIT


def write_json_error(sock: Any, status: int, reason: str, message: str) -> None:
    """Gunicorn's own errors (a request line or head over its limits, a malformed
    request) in the apps' one error shape instead of an HTML page."""
    code = "".join(c if c.isalnum() else "_" for c in reason.lower())
    body = json.dumps({"code": status, "status": code, "message": message, "errors": {}},
                      separators=(",", ":")).encode()  # compact, as the apps' errors
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class AdminWorker(ThreadWorker):  # type: ignore[misc]
    """Plain ``gthread`` whose own error answers are JSON in the one error shape."""

    def init_process(self) -> None:
        util.write_error = write_json_error  # this worker process only
        super().init_process()


class PeerWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` that reads whole requests in its event loop, with a deadline per request."""

    def init_process(self) -> None:
        util.write_error = write_json_error  # this worker process only
        settings = load(data_dir_from_env())
        self.deadline = float(settings["client_deadline"])
        self.max_body = int(settings["peer_max_body"])
        self.per_address = int(settings["peer_connections_per_address"])
        self.keepalive_requests = int(settings["peer_keepalive_requests"])
        self.balance_wait = int(settings["peer_accept_balance_ms"]) / 1000
        self.slot = acceptbalance.claim(self) if self.balance_wait else None
        self.distrust_until = 0.0  # monotonic: no stepping aside before it
        self.paused: dict[Any, tuple[Any, float]] = {}  # listener -> (server, watched again at)
        self.stepping_aside: tuple[float, float] | None = None  # (since, last) of a busy spell
        self.by_address: dict[str, int] = {}  # open connections per address key
        self.max_head = (self.cfg.limit_request_line + 4 + self.cfg.limit_request_fields
                         * (self.cfg.limit_request_field_size + 2))
        self.reading: dict[Any, float] = {}  # connection -> when its request must be in
        self.no_keepalive: set[Any] = set()
        self.draining: set[Any] = set()
        super().init_process()

    @property
    def nr_conns(self) -> int:
        """Open connections (gthread's count), mirrored into the shared table."""
        return self.__dict__.get("_nr_conns", 0)

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        self.__dict__["_nr_conns"] = value
        if (slot := self.__dict__.get("slot")) is not None:
            slot.set(value)

    def run(self) -> None:
        self.poller.close()
        self.poller = acceptbalance.PausingSelector(self)  # gthread registers listeners in run
        super().run()

    def accept(self, server: Any, listener: Any) -> None:
        if self._step_aside(server, listener):
            return
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        key = address_key(client)
        with self._lock:
            held = self.by_address.get(key, 0)
            if held < self.per_address:
                self.by_address[key] = held + 1
        if held >= self.per_address:
            refusals.log(self.log, client, 503, refusals.refuse_busy(sock))
            return
        conn = CountedConn(self.cfg, BufferedSocket(sock), client, server,
                           partial(self._release, key))
        self.nr_conns += 1
        self.reading[conn] = time.monotonic() + self.deadline
        with self._lock:
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self.on_client_socket_readable, conn))

    def _step_aside(self, server: Any, listener: Any) -> bool:
        """Whether to leave the waiting connection to a worker holding fewer: then the
        listener is not watched for :data:`PAUSE` seconds. A spell of a busy listener
        (callbacks no more than 3 pauses apart: one connection, or a queue of them)
        waits at most ``peer_accept_balance_ms`` in all; when this worker then had to
        take a connection itself (the other was busy or stuck), it does not step aside
        again for :data:`~app.run.acceptbalance.DISTRUST` seconds, or ten times the setting if that
        is longer (so nothing queues behind it)."""
        now = time.monotonic()
        since, last = self.stepping_aside or (now, now)
        if now - last > 3 * PAUSE:  # the listener was quiet meanwhile: a new spell
            since = now
        self.stepping_aside = (since, now)
        if now < self.distrust_until or self.slot is None:
            return False
        fewest = self.slot.fewest_elsewhere()
        if fewest is None or self.nr_conns <= fewest:
            return False
        if now - since >= self.balance_wait:  # waited enough: take it, trust less a while
            self.distrust_until = now + max(DISTRUST, 10 * self.balance_wait)
            return False
        with self._lock:
            self.poller.unregister(listener)
        self.paused[listener] = (server, now + PAUSE)
        return True

    def watch_paused(self, timeout: float | None) -> float | None:
        """Watch again the listeners whose pause is over; the timeout to wait at most."""
        now = time.monotonic()
        for listener, (server, due) in list(self.paused.items()):
            if due <= now:
                del self.paused[listener]
                with self._lock:
                    self.poller.register(listener, selectors.EVENT_READ,
                                         partial(self.accept, server))
            elif timeout is None or due - now < timeout:
                timeout = due - now
        return timeout

    def _release(self, key: str) -> None:
        with self._lock:
            left = self.by_address.get(key, 1) - 1
            if left > 0:
                self.by_address[key] = left
            else:
                self.by_address.pop(key, None)

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
        if conn in self.draining:  # answered 413: read the rest away until the client closes
            return
        buf = conn.sock.pending
        buf += data
        state = request_state(buf, self.max_body)
        if state == WAIT and len(buf) > self.max_head + self.max_body:
            state = MALFORMED  # a head over gunicorn's limits: its parser refuses it
        if state == WAIT:
            return
        if state in _REFUSED:
            self._refuse(conn, *_REFUSED[state])
            return
        del self.reading[conn]
        if state == MALFORMED:
            self.no_keepalive.add(conn)
        with self._lock:
            self.poller.unregister(client)
        self.enqueue_req(conn)

    def _refuse(self, conn: Any, status: int, answer: bytes) -> None:
        """Answer at once (413, 400), then read and drop the rest of the request until the
        client closes or the deadline passes (closing first would reset the answer away)."""
        try:
            refusals.log(self.log, conn.client, status, conn.sock.raw.send(answer))
            conn.sock.raw.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn)
            return
        conn.sock.pending.clear()
        self.draining.add(conn)

    def handle_request(self, req: Any, conn: Any) -> bool:
        """gthread's, but the ``peer_keepalive_requests``-th request of a connection is
        answered with ``Connection: close``: kept-alive connections are spread again over
        the workers (a worker that holds them all would use one core of several)."""
        conn.served += 1
        if conn.served >= self.keepalive_requests:
            req.must_close = True
        return bool(super().handle_request(req, conn))

    def handle(self, conn: Any) -> tuple[bool, Any]:
        conn.sock.raw.settimeout(self.deadline)  # each write of the answer: client_deadline
        keepalive, conn = super().handle(conn)
        if conn.sock.stalled:  # the client stopped reading: reset, drop what it never took
            refusals.reset(conn.sock.raw)
        if conn in self.no_keepalive:
            self.no_keepalive.discard(conn)
            return False, conn
        return keepalive, conn

    def murder_keepalived(self) -> None:
        super().murder_keepalived()
        now = time.monotonic()
        for conn in [c for c, due in self.reading.items() if due <= now]:
            if conn not in self.draining:
                try:
                    refusals.log(self.log, conn.client, 408, conn.sock.raw.send(refusals.TIMEOUT))
                except OSError:
                    pass
            self._drop(conn)

    def _drop(self, conn: Any) -> None:
        self.reading.pop(conn, None)
        self.draining.discard(conn)
        with self._lock:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self.nr_conns -= 1
        conn.close()
