"""Test transports for the sync and key-lookup core tests (no sockets).

- :class:`Transport`: a requests adapter that hands each request to a Python
  handler and records it; mount it on a session given to the core.
- :func:`flask_handler`: a handler that runs a real Flask app (the peer app of
  another data directory) in-process.
- :func:`other_key`: a fresh stranger's fingerprint, ``.pub`` document and
  seed (see :mod:`tests.helpers.strangers`).
- :func:`copy_node`: a fresh data directory holding copies of own identities
  made once per module (their files are the identity).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from app.core.base.datadir import DataDir
from app.core.network import peerclient
from tests.helpers.strangers import new_stranger


@dataclass
class Call:
    method: str
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Reply = tuple[int, Any, dict[str, str]]  # the body: bytes, or a file-like raw stream
Handler = Callable[[Call], Reply]


class Transport(BaseAdapter):
    """Answers every request with ``handler(call)``; an exception from it is raised to requests."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.calls: list[Call] = []

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
        body = request.body or b""
        call = Call(request.method or "GET", request.url or "",
                    body if isinstance(body, bytes) else body.encode(), dict(request.headers))
        self.calls.append(call)
        status, data, headers = self.handler(call)
        response = requests.Response()
        response.status_code = status
        response.raw = io.BytesIO(data) if isinstance(data, bytes) else data
        response.headers = CaseInsensitiveDict(headers)
        response.url = call.url
        response.request = request
        return response

    def close(self) -> None:
        pass

    def urls(self) -> list[str]:
        return [c.url for c in self.calls]


def session_with(handler: Handler) -> tuple[requests.Session, Transport]:
    transport = Transport(handler)
    session = peerclient.new_session()
    session.mount("http://", transport)
    session.mount("https://", transport)
    return session, transport


def flask_handler(app: Flask) -> Handler:
    """Run each request through ``app`` in-process (its real routes, no socket)."""
    client = app.test_client()

    def handle(call: Call) -> Reply:
        path = "/" + call.url.split("/", 3)[3]
        r = client.open(path, method=call.method, data=call.body,
                        headers={k: v for k, v in call.headers.items()
                                 if k.lower() == "content-type"})
        return r.status_code, r.get_data(), dict(r.headers)

    return handle


def routes(table: dict[str, Handler], default: Handler | None = None) -> Handler:
    """Dispatch on ``scheme://host:port`` of the URL."""

    def handle(call: Call) -> Reply:
        origin = "/".join(call.url.split("/", 3)[:3])
        handler = table.get(origin, default)
        if handler is None:
            raise requests.ConnectionError(f"nothing at {origin}")
        return handler(call)

    return handle


def text(status: int, body: bytes | str, content_type: str = "text/plain") -> Reply:
    data = body.encode() if isinstance(body, str) else body
    return status, data, {"Content-Type": content_type}


def other_key() -> tuple[str, bytes, bytes]:
    """(fingerprint, .pub document, signing seed) of a new stranger (no key file)."""
    key = new_stranger()
    return key.fp, key.document, key.seed


def copy_node(root: Path, template: DataDir, own: Iterable[str], **settings: Any) -> DataDir:
    """A fresh data directory at ``root`` holding copies of ``template``'s identities ``own``."""
    dd = DataDir(root, settings, environ={})
    dd.initialise()
    for fp in own:
        for name in (fp, f"{fp}.pub"):
            shutil.copy2(template.identities / name, dd.identities / name)
    return dd
