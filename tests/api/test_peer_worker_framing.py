"""The peer worker's framing check (app/web/worker.py): when is a request whole?"""

from __future__ import annotations

import pytest

from app.web.worker import (
    BARE_LF,
    MALFORMED,
    READY,
    TOO_LARGE,
    WAIT,
    address_key,
    request_state,
)

HEAD = b"POST /feeds/x HTTP/1.1\r\nHost: h\r\n"


@pytest.mark.parametrize(("data", "state"), [
    (b"GET /health HTTP/1.1\r\nHost: h", WAIT),
    (b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n", READY),
    (HEAD + b"Content-Length: 10\r\n\r\n" + b"x" * 9, WAIT),
    (HEAD + b"Content-Length: 10\r\n\r\n" + b"x" * 10, READY),
    (HEAD + b"Content-Length: 100\r\n\r\n", WAIT),
    (HEAD + b"Content-Length: 101\r\n\r\n", TOO_LARGE),
    (HEAD + b"Content-Length: -1\r\n\r\n", MALFORMED),
    (HEAD + b"Content-Length: 99999999999999999999999\r\n\r\n", MALFORMED),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"a\r\n0123456789\r\n", WAIT),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"a\r\n0123456789\r\n0\r\n\r\n", READY),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"a\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
     READY),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"65\r\n", TOO_LARGE),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"zz\r\n", MALFORMED),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 100, MALFORMED),
    # a coding that only contains "chunked", or chunked not last: gunicorn answers at once
    # (the loop waited for client_deadline and answered 408; found by the end-of-stop tester)
    (HEAD + b"Transfer-Encoding: xchunked\r\n\r\n" + b"a\r\n", MALFORMED),
    (HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + b"a\r\n", MALFORMED),
    (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + b"a\r\n0123456789\r\n", WAIT),
    (HEAD + b"Transfer-Encoding: CHUNKED\r\n\r\n" + b"0\r\n\r\n", READY),
    # lines ended by a bare LF: the head can never end; the loop held the connection until
    # client_deadline and answered 408 (found by the stop 21 tester)
    (b"GET /health HTTP/1.1\nHost: h\n\n", BARE_LF),
    (b"GET /health HTTP/1.1\r\nHost: h\n\r\n", BARE_LF),
    (b"GET /health HTTP/1.1\nHost: h\n", WAIT),
])
def test_request_state(data: bytes, state: str) -> None:
    assert request_state(data, max_body=100) == state


@pytest.mark.parametrize(("client", "key"), [
    (("203.0.113.7", 40000), "203.0.113.7"),
    (("::ffff:203.0.113.7", 40000, 0, 0), "203.0.113.7"),  # IPv4-mapped counts as IPv4
    (("2001:db8:1:2:aaaa::1", 40000, 0, 0), "2001:db8:1:2::/64"),
    (("2001:db8:1:2:bbbb::9", 40001, 0, 0), "2001:db8:1:2::/64"),  # same /64, same share
    ("", "local"),  # a UNIX socket
])
def test_connections_count_against_the_address_or_its_ipv6_64(client: object, key: str) -> None:
    assert address_key(client) == key
