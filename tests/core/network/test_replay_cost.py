"""A replayed feed request is refused before the page is chosen (docs/protocol.md,
Serving a request: the nonce, step 10, comes before the page, step 12).

Found by the tester of issues 8 and 14: the nonce was checked only after the page (or a
summary of up to 20,000 entries, or the reshares scanned for keys) had been chosen, so
whoever recorded a request could replay it within its window and make the owner do
that work again at each replay, for a 409.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.base.errors import Replay
from app.core.identity.identities import Identities
from app.core.network import exchange, feeds
from app.core.network.feeds import serve_feed
from app.core.posts import feedorder
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.core.network.test_exchange import party
from tests.helpers.datadirs import PASSWORD, make_datadir


@pytest.fixture(autouse=True, scope="module")
def _cheap_kdf() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIWAN_INSECURE_KDF", "1")
        yield


@pytest.mark.parametrize("summary", [False, True])
def test_a_replayed_request_chooses_no_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            summary: bool) -> None:
    dd = make_datadir(tmp_path / "owner")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    Ingestor(dd).ingest_many([build_post(seed, {"CREATED_TIME": int(time.time()) - 10,
                                                "TEXT": "hello"})], author=own)
    chosen: list[str] = []
    for module, name in ((feedorder, "feed_files"), (feedorder, "feed_summary"),
                         (feeds, "keys_for")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name, **kw: (
            chosen.append(name), real(*a, **kw))[1])
    now = int(time.time())
    body, pending = exchange.build_request(
        asker=party().own, owner_fp=own, owner_transport=ids.public_key(own).transport_public,
        summary=summary, limit=10, now=now, want_keys=["ab" * 32])
    got = exchange.open_response(serve_feed(dd, own, body, now=now, remote="192.0.2.3").read(),
                                 pending, max_bytes=10**7)
    assert len(got.summary if summary else got.posts) == 1
    first: list[Any] = list(chosen)
    assert first
    with pytest.raises(Replay):
        serve_feed(dd, own, body, now=now, remote="192.0.2.3")
    assert chosen == first  # nothing chosen for the replay
