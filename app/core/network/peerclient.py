"""The HTTP client this node uses to talk to other nodes.

Everything another node answers is hostile, so every request here has a
timeout per socket operation *and* an overall deadline (a peer trickling one
byte at a time is cut off), a cap on the answer's size (read in small pieces,
never trusting ``Content-Length``), no redirects, no compression (no
decompression bombs) and no credentials from ``~/.netrc``. Proxies from the
usual environment variables are honoured. Transport failures become
:class:`PeerError` with a message that names the address.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import requests.utils
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from ..base import strictjson
from ..base.errors import BadInput, PeerError

READ_PIECE = 64 * 1024
USER_AGENT = "diwan"


@dataclass(frozen=True)
class Answer:
    """Another node's answer: its HTTP ``status``, the ``body`` (at most the ``max_bytes``
    asked for) and the bare ``content_type`` (no parameters; empty if none was sent)."""

    status: int
    body: bytes
    content_type: str


# The overall deadline while the status line and headers arrive: a socket timeout bounds
# each read only, so a node trickling a byte at a time would never be cut off. Every
# connection used by a call on this thread is noted; at the deadline a timer shuts its
# socket down, which ends the blocked read.
_calls = threading.local()  # .conns: the connections used by this thread's call under way


def _noted(conn: Any) -> None:
    conns = getattr(_calls, "conns", None)
    if conns is not None:
        conns.append(conn)


class _Conn(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kw: Any) -> None:
        _noted(self)
        super().request(*args, **kw)


class _TLSConn(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kw: Any) -> None:
        _noted(self)
        super().request(*args, **kw)


class _Pool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _Conn


class _TLSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TLSConn


_POOLS = {"http": _Pool, "https": _TLSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections :func:`call` can cut off at its deadline."""

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kw: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kw)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class _Deadline:
    """Shuts down the sockets of the connections a call used, if it is still running at
    ``timeout`` seconds (:attr:`passed` then tells why the call failed)."""

    def __init__(self, timeout: float) -> None:
        self.conns: list[Any] = []
        self.passed = False
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(timeout, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _calls.conns = self.conns
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        _calls.conns = None

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.passed = True
            for conn in self.conns:
                sock = getattr(conn, "sock", None)  # a socket, TLS or not, or TLS in TLS
                raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
                if isinstance(raw, socket.socket):  # the file descriptor, below any TLS
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(raw, socket.SHUT_RDWR)


def new_session() -> requests.Session:
    """A session for talking to other nodes (keep-alive across pages of one sync).

    No ``~/.netrc`` credentials, no compression; the caller closes it. Its adapters let
    :func:`call` cut a connection off at the call's deadline, headers included.
    """
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _Adapter())
    session.trust_env = False  # no ~/.netrc credentials sent to peers; proxies set per request
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    return session


def sibling(session: requests.Session) -> requests.Session:
    """A new session sharing ``session``'s transport adapters, for use from another thread.

    A session object is not meant to be shared between threads; its adapters'
    connection pools are. Close only the original.
    """
    other = new_session()
    for prefix, adapter in session.adapters.items():
        other.mount(prefix, adapter)
    return other


def _failed(where: str, what: str) -> PeerError:
    return PeerError(f"{where} {what}", field="address")


def _read_capped(response: requests.Response, max_bytes: int, deadline: float,
                 where: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _failed(where, f"answered {declared} bytes, more than the {max_bytes} accepted")
    raw: Any = response.raw
    read = getattr(raw, "read1", None) or raw.read
    buf = bytearray()
    while True:
        piece = read(READ_PIECE)
        if not piece:
            return bytes(buf)
        buf += piece
        if len(buf) > max_bytes:
            raise _failed(where, f"answered more than the {max_bytes} bytes accepted")
        if time.monotonic() > deadline:
            raise _failed(where, "took too long to answer")


@functools.lru_cache(maxsize=256)
def _environ_proxies(origin: str) -> dict[str, str]:
    """The proxies the environment sets for ``scheme://host:port`` (read once per origin:
    scanning the environment costs more than the rest of a small request)."""
    return dict(requests.utils.get_environ_proxies(origin))


def call(session: requests.Session, method: str, url: str, *, timeout: float, max_bytes: int,
         data: bytes | None = None, content_type: str | None = None) -> Answer:
    """Send one request and read at most ``max_bytes`` of the answer within ``timeout``.

    ``timeout`` (seconds) bounds each socket operation and the whole exchange; ``data`` is
    the request body, sent with ``content_type``. Any status is returned as an
    :class:`Answer` (redirects are not followed). Raises :class:`PeerError` (``field``
    ``address``) if the node cannot be reached, is too slow, answers more than
    ``max_bytes`` bytes or breaks the connection.
    """
    where = url.split("/", 3)[2] if url.count("/") >= 2 else url
    headers = {"Content-Type": content_type} if content_type else {}
    deadline = time.monotonic() + timeout
    with _Deadline(timeout) as cut:
        try:
            proxies = dict(_environ_proxies("/".join(url.split("/", 3)[:3])))
            with session.request(method, url, data=data, headers=headers, timeout=timeout,
                                 stream=True, allow_redirects=False,
                                 proxies=proxies) as response:
                body = _read_capped(response, max_bytes, deadline, where)
                if cut.passed:  # cut short: what was read ended at the shutdown, not the end
                    raise _failed(where, "took too long to answer")
                return Answer(response.status_code, body,
                              response.headers.get("Content-Type", "").split(";")[0].strip())
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise _failed(where, f"did not answer within {timeout} s") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if cut.passed:  # the deadline shut the connection down
                raise _failed(where, "took too long to answer") from None
            if isinstance(exc, requests.ConnectionError):
                raise _failed(where, "could not be reached") from None
            if isinstance(exc, OSError):  # a socket error surfacing while streaming the body
                raise _failed(where, f"failed: {exc.strerror or type(exc).__name__}") from None
            raise _failed(where, f"failed: {type(exc).__name__}") from None


def _error_doc(answer: Answer) -> dict[str, Any]:
    if answer.content_type != "application/json":
        return {}
    try:
        doc = strictjson.loads(answer.body, what="the answer")
    except BadInput:
        return {}
    return doc if isinstance(doc, dict) else {}


def error_code(answer: Answer) -> str | None:
    """The ``status`` code name of a peer's JSON error answer (``not_authenticated``...)."""
    code = _error_doc(answer).get("status")
    return code if isinstance(code, str) else None


def describe_error(answer: Answer) -> str:
    """A short, printable summary of a peer's error answer: ``HTTP <status>`` and its JSON
    ``message`` if any, non-printable characters replaced, at most 200 of them."""
    message = _error_doc(answer).get("message")
    message = message if isinstance(message, str) else ""
    clean = "".join(ch if ch.isprintable() else "?" for ch in message)[:200]
    return f"HTTP {answer.status}" + (f": {clean}" if clean else "")
