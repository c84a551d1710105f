"""What a request for others' keys costs the owner (docs/threats.md, A7b).

A request may name up to 8 fingerprints whose ``.pub`` the asker wants; the owner
looks for them among the inner authors of its newest reshares the asker may see (up
to ``KEY_SCAN``, 1,000). Found by the tester of issues 8 and 14: each reshare file was
read and decoded again at every request, so anyone (a self-made stranger) asking for
keys that are not there made a 3 KB request cost ~47 ms of the owner's CPU against
1,000 reshares (0.7 ms without keys), as often as its budget allowed. A reshare's
content never changes under its SHA-1: it is read once per process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.identity.identities import Identities
from app.core.network import exchange, feeds
from app.core.network.feeds import serve_feed
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.core.network.test_exchange import party
from tests.helpers.datadirs import PASSWORD, make_datadir


@pytest.fixture(autouse=True, scope="module")
def _cheap_kdf() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIWAN_INSECURE_KDF", "1")
        yield


def test_a_request_for_absent_keys_reads_each_reshare_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dd = make_datadir(tmp_path / "owner")
    ids = Identities(dd)
    own, other = ids.create(PASSWORD), ids.create(PASSWORD)
    seed, other_seed = ids.open_seed(own, PASSWORD), ids.open_seed(other, PASSWORD)
    t = int(time.time()) - 1000
    originals = [build_post(other_seed, {"CREATED_TIME": t + i, "TEXT": f"o{i}"})
                 for i in range(20)]
    Ingestor(dd).ingest_many(originals, author=other)
    Ingestor(dd).ingest_many([build_post(seed, {"CREATED_TIME": t + 100 + i, "TEXT": "look",
                                                "RESHARED_POST": o.decode()})
                              for i, o in enumerate(originals)], author=own)
    decoded: list[Any] = []
    real = feeds.decode_post
    monkeypatch.setattr(feeds, "decode_post", lambda *a, **kw: (decoded.append(1),
                                                                real(*a, **kw))[1])
    stranger = party()
    absent = [f"{n:02x}" * 32 for n in range(exchange.MAX_KEYS)]
    for _ in range(2):
        now = int(time.time())
        body, pending = exchange.build_request(
            asker=stranger.own, owner_fp=own, after=exchange.MAX_TIME, limit=1, now=now,
            owner_transport=ids.public_key(own).transport_public, want_keys=absent)
        got = exchange.open_response(serve_feed(dd, own, body, now=now,
                                                remote="192.0.2.9").read(), pending,
                                     max_bytes=10**7)
        assert got.keys == []
    assert len(decoded) <= 20  # the second request read no file
    now = int(time.time())
    body, pending = exchange.build_request(
        asker=stranger.own, owner_fp=own, after=exchange.MAX_TIME, limit=1, now=now,
        owner_transport=ids.public_key(own).transport_public, want_keys=[other])
    got = exchange.open_response(serve_feed(dd, own, body, now=now, remote="192.0.2.9").read(),
                                 pending, max_bytes=10**7)
    assert got.keys == [ids.pub_document(other)]  # still found, from what was remembered
