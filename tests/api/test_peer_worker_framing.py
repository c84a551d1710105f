"""The peer worker's framing check (app/web/worker.py): when is a request whole?"""

from __future__ import annotations

import pytest

from app.web.worker import MALFORMED, READY, TOO_LARGE, WAIT, request_state

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
])
def test_request_state(data: bytes, state: str) -> None:
    assert request_state(data, max_body=100) == state
