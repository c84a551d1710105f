"""The peer and admin workers' own answers (app/web/worker.py), without gunicorn."""

from __future__ import annotations

import json
import socket

from app.web.worker import write_json_error


def test_gunicorns_own_errors_are_compact_json_like_the_apps() -> None:
    """'Content-Length: -1' is refused by gunicorn's parser; its JSON had spaces after
    ':' and ',' where every app error is compact (found by the end-of-session tester)."""
    a, b = socket.socketpair()
    with a, b:
        write_json_error(a, 400, "Bad Request", "Invalid Content-Length")
        a.shutdown(socket.SHUT_WR)
        answer = b.recv(65536)
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert body == json.dumps(json.loads(body), separators=(",", ":")).encode()
