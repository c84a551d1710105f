"""A hostile peer against real gunicorn processes: replayed, tampered, truncated, random and
oversize requests to a node's peer API, and hostile responses to a node that syncs from it.
Real processes, real HTTP on 127.0.0.1, real crypto; nothing mocked.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.core.base import noise
from app.core.identity import keys
from app.core.network import exchange
from app.core.posts import codec as posts
from tests.helpers.datadirs import snapshot
from tests.helpers.strangers import Stranger, new_stranger

from .harness import Node

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PW = "pw-basant-long-enough"


def ask(stranger: Stranger, owner: keys.PublicKey, *, now: int | None = None,
        limit: int = 10) -> tuple[bytes, exchange.PendingRequest]:
    """A feed request from ``stranger`` (keys only in this test) to ``owner``."""
    return exchange.build_request(asker=stranger.own, owner_fp=owner.fingerprint,
                                  owner_transport=owner.transport_public,
                                  after=0, limit=limit,
                                  now=int(time.time()) if now is None else now)


@pytest.fixture(scope="module")
def basant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = Node(tmp_path_factory.mktemp("hostile") / "basant", "basant",
                settings={"peer_max_body": 4096})
    with node:
        fp = node.admin("POST", "/identities", json={"password": PW}).json()["fingerprint"]
        r = node.admin("POST", "/posts", json={"fingerprint": fp, "password": PW,
                                               "text": "public hello"})
        assert r.status_code == 201
        owner = keys.parse_pub(node.peer("GET", f"/identities/{fp}").content, expected_fp=fp)
        stranger = new_stranger(b"\x11" * 32)
        yield {"node": node, "fp": fp, "owner": owner, "stranger": stranger,
               "sha": r.json()["sha1"]}


def _feed(b: dict[str, Any], body: bytes) -> requests.Response:
    return b["node"].peer("POST", f"/feeds/{b['fp']}", data=body,
                          headers={"Content-Type": "application/octet-stream"})


def test_a_valid_request_works_and_its_replay_is_refused(basant: dict[str, Any]) -> None:
    body, pending = ask(basant["stranger"], basant["owner"])
    r = _feed(basant, body)
    assert r.status_code == 200
    got = exchange.open_response(r.content, pending, max_bytes=10**7)
    assert [posts.decode_post(p, max_bytes=10**6).sha1 for p in got.posts] == [basant["sha"]]
    again = _feed(basant, body)
    assert again.status_code == 409 and again.json()["status"] == "replay"
    stale, _ = ask(basant["stranger"], basant["owner"], now=int(time.time()) - 3600)
    assert _feed(basant, stale).status_code in (400, 409)


def test_tampered_truncated_random_oversize_requests_get_4xx_and_change_nothing(
        basant: dict[str, Any]) -> None:
    node: Node = basant["node"]
    before = snapshot(node.root, "posts", "identities")
    body, _ = ask(basant["stranger"], basant["owner"])
    bad: list[bytes] = []
    for pos in range(0, len(body), max(1, len(body) // 40)):
        bad.append(body[:pos] + bytes([body[pos] ^ 0x01]) + body[pos + 1:])
    bad += [body[:n] for n in (0, 1, 16, 32, 48, len(body) // 2, len(body) - 1)]
    bad += [os.urandom(n) for n in (1, 50, 200, 1000, 4096)]
    bad += [b"{}", b"null", b"\x00" * 100, body + b"x"]
    for junk in bad:
        r = _feed(basant, junk)
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
        assert r.headers["Content-Type"].startswith("application/json")
    oversize = _feed(basant, os.urandom(4097))
    assert oversize.status_code == 413
    other = node.peer("POST", f"/feeds/{'ab' * 32}", data=body)   # not hosted: the one answer
    junk = _feed(basant, b"junk")
    assert (other.status_code, other.content) == (junk.status_code, junk.content) and \
        other.json()["status"] == "not_authenticated"
    assert node.peer("POST", "/feeds/..%2F..%2Fetc", data=body).status_code in (400, 404)
    # the workers are alive and still answer a fresh, valid request
    fresh, pending = ask(basant["stranger"], basant["owner"])
    r = _feed(basant, fresh)
    assert r.status_code == 200 and exchange.open_response(r.content, pending, max_bytes=10**7)
    after = snapshot(node.root, "posts", "identities")
    assert after == before
    assert "Traceback" not in node.log("peer")


class HostileOwner:
    """Pretends to be the node of identity X and answers feed requests with bad responses."""

    def __init__(self, seed: bytes) -> None:
        self.stranger = new_stranger(seed)
        self.mode = "random"
        self.recorded: bytes | None = None
        self.asked = 0

        @Request.application
        def app(request: Request) -> Response:
            if request.path.startswith("/identities/"):
                return Response(self.stranger.document, mimetype="text/plain")
            self.asked += 1
            return Response(self.answer(request.get_data()),
                            mimetype="application/octet-stream")

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: bytes) -> bytes:
        x = self.stranger
        static = noise.keypair_from_secret(x.transport)
        opened = exchange.open_request(body, owner_fp=x.fp, slots=[static])
        exchange.parse_request(opened, now=int(time.time()), window=300, max_limit=1000)
        good_post = posts.build_post(x.seed, {"TEXT": "sneaky", "CREATED_TIME": int(time.time())})
        sealed = exchange.respond(opened, owner_pub=x.document, posts=[good_post],
                                  more=False, max_bytes=10**6)
        if self.mode == "replayed":
            previous, self.recorded = self.recorded, sealed
            return previous or sealed
        if self.mode == "tampered":
            return sealed[:60] + bytes([sealed[60] ^ 1]) + sealed[61:]
        if self.mode == "truncated":
            return sealed[: len(sealed) // 2]
        if self.mode in ("wrong-key", "other-request"):
            # a middleman's own handshake (its own key), or the right key for another request
            key = noise.generate_keypair() if self.mode == "wrong-key" else static
            fake_owner = keys.certify(x.seed, key.public)
            other, _ = ask(new_stranger(b"\x33" * 32), fake_owner)
            reopened = exchange.open_request(other, owner_fp=x.fp, slots=[key])
            return exchange.respond(reopened, owner_pub=x.document, posts=[good_post],
                                    more=False, max_bytes=10**6)
        return os.urandom(1024)

    def close(self) -> None:
        self.server.shutdown()


def test_hostile_responses_are_refused_and_store_nothing(basant: dict[str, Any]) -> None:
    node: Node = basant["node"]
    hostile = HostileOwner(b"\x22" * 32)
    x = hostile.stranger.fp
    try:
        r = node.admin("PUT", f"/contacts/{x}", json={"address": hostile.url,
                                                      "identity": basant["fp"]})
        assert r.status_code in (200, 201), r.text
        hostile.mode = "replayed"
        node.admin("POST", "/sync", json={"fingerprint": x})  # records a response to replay
        for leftover in (node.root / "posts" / x).glob("*"):
            leftover.unlink()  # forget what the honest first answer delivered
        node.admin("POST", "/sync", json={"fingerprint": x, "full": True})
        for mode in ("random", "tampered", "truncated", "wrong-key", "other-request", "replayed"):
            hostile.mode = mode
            before = hostile.asked
            r = node.admin("POST", "/sync", json={"fingerprint": x, "full": True})
            assert r.status_code == 200, r.text
            (status,) = r.json()["statuses"]
            assert hostile.asked > before, mode
            assert status["last_error"], (mode, status)
            stored = list((node.root / "posts" / x).glob("[0-9a-f]*")) \
                if (node.root / "posts" / x).exists() else []
            assert stored == [], (mode, stored)
        assert node.admin("GET", "/health").status_code == 200
    finally:
        hostile.close()
        node.admin("DELETE", f"/contacts/{x}")
