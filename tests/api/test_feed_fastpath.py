"""The feed exchange's hot path (app/peer/fastpath.py) answers exactly as the Flask route.

Well-formed ``POST /feeds/<FP>`` requests are served by a WSGI middleware in front of
Flask; everything else goes to the Flask route. Each case is sent through both (the
middleware, and the same app with the middleware taken out) and must get the same
status, headers and, where the answer is not a fresh encryption, the same bytes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from app import create_peer_app
from app.core.network import exchange
from app.peer import fastpath
from tests.core.network.test_exchange import ASKER, request
from tests.helpers.servednode import served_node

OCTETS = "application/octet-stream"


@pytest.fixture()
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("DIWAN_INSECURE_KDF", "1")
    served = served_node(tmp_path / "n")
    config = {"data_dir": str(served.dd.root), "budget_prefix_requests": 5}
    fast, plain = create_peer_app(config), create_peer_app(config)
    assert isinstance(fast.wsgi_app, fastpath.FeedFastPath)
    plain.wsgi_app = plain.wsgi_app.flask_wsgi  # type: ignore[attr-defined,method-assign]
    return {"own": served.own, "raws": served.raws, "owner": served.owner,
            "fast": fast.test_client(), "plain": plain.test_client()}


def _post(client: Any, path: str, body: bytes, addr: str = "192.0.2.1", **kw: Any) -> Any:
    return client.post(path, data=body, content_type=OCTETS,
                       environ_base={"REMOTE_ADDR": addr}, **kw)


def _same_answer(a: Any, b: Any, *, body: bool = True) -> None:
    assert a.status_code == b.status_code
    assert sorted(a.headers.items()) == sorted(b.headers.items())
    if body:
        assert a.data == b.data


def test_a_served_page_has_the_same_status_and_headers_either_way(node: dict[str, Any]
                                                                   ) -> None:
    answers = []
    for client in (node["fast"], node["plain"]):
        now = int(time.time())
        body, pending = request(ASKER, node["owner"], now=now, limit=10)
        assert len(body) == exchange.REQUEST_BYTES
        r = _post(client, f"/feeds/{node['own']}", body)
        assert r.status_code == 200, r.data
        assert exchange.open_response(r.data, pending, max_bytes=10**7).posts == node["raws"]
        answers.append(r)
    _same_answer(*answers, body=False)  # each body is a fresh encryption
    assert answers[0].headers["Cache-Control"] == "no-store"
    assert len(answers[0].data) == int(answers[0].headers["Content-Length"])


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_a_request_that_does_not_authenticate_gets_the_same_bytes_either_way(
        node: dict[str, Any], accept: str) -> None:
    junk = os.urandom(exchange.REQUEST_BYTES)
    for fp in (node["own"], os.urandom(32).hex()):
        fast = _post(node["fast"], f"/feeds/{fp}", junk, headers={"Accept": accept})
        plain = _post(node["plain"], f"/feeds/{fp}", junk, headers={"Accept": accept})
        assert fast.status_code == 400
        _same_answer(fast, plain)


def test_past_the_prefix_budget_both_answer_429_with_retry_after(node: dict[str, Any]
                                                                 ) -> None:
    junk = os.urandom(exchange.REQUEST_BYTES)
    for client, addr in ((node["fast"], "198.51.100.1"), (node["plain"], "203.0.113.1")):
        statuses = [_post(client, f"/feeds/{node['own']}", junk, addr).status_code
                    for _ in range(6)]
        assert statuses == [400] * 5 + [429]
    fast = _post(node["fast"], f"/feeds/{node['own']}", junk, "198.51.100.2")
    plain = _post(node["plain"], f"/feeds/{node['own']}", junk, "203.0.113.2")
    _same_answer(fast, plain)
    assert 1 <= int(fast.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("case", ["get", "upper", "short", "long", "chunked", "subpath"])
def test_every_other_shape_goes_to_the_flask_route(node: dict[str, Any], case: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str] = []
    monkeypatch.setattr(fastpath, "serve_feed", lambda *a, **k: served.append("fast"))
    fp, body = node["own"], os.urandom(exchange.REQUEST_BYTES)
    path, kw = f"/feeds/{fp}", {}
    if case == "get":
        fast, plain = node["fast"].get(path), node["plain"].get(path)
    else:
        if case == "upper":
            path = f"/feeds/{fp.upper()}"
        elif case == "short":
            body = body[:-1]
        elif case == "long":
            body += b"\0"
        elif case == "subpath":
            path += "/x"
        elif case == "chunked":
            kw = {"headers": {"Transfer-Encoding": "chunked"}}
        fast, plain = (_post(c, path, body, **kw) for c in (node["fast"], node["plain"]))
    assert served == []
    _same_answer(fast, plain)
    assert fast.status_code in (400, 404, 405)


def test_an_unexpected_failure_is_the_same_bare_500(node: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("a secret detail")
    monkeypatch.setattr(fastpath, "serve_feed", broken)
    monkeypatch.setattr("app.peer.feeds.serve_feed", broken)
    body = os.urandom(exchange.REQUEST_BYTES)
    fast = _post(node["fast"], f"/feeds/{node['own']}", body)
    plain = _post(node["plain"], f"/feeds/{node['own']}", body)
    assert fast.status_code == 500 and b"secret" not in fast.data
    _same_answer(fast, plain)
