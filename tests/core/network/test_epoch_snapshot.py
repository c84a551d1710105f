"""A served page and the epoch record naming its positions come from one snapshot.

The owner read its epoch, then ran the automatic repair and chose the page, in separate
read transactions: a rebuild in between (a new numbering, a new epoch) sent positions of
the new numbering under the old epoch, and the follower kept a cursor in the wrong
numbering. The epoch is now read by the page's own statement, after the repair.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.identity.identities import Identities
from app.core.network import exchange, feeds
from app.core.network.feeds import serve_feed
from app.core.posts import feedorder, reconcile
from app.core.posts.codec import build_post
from app.core.posts.index import Index
from app.core.posts.ingest import Ingestor
from tests.core.network.test_exchange import party
from tests.helpers.datadirs import PASSWORD, make_datadir


@pytest.mark.parametrize("summary", [False, True])
def test_a_rebuild_during_the_request_gives_the_epoch_of_the_positions_sent(
        tmp_path: Path, summary: bool) -> None:
    dd = make_datadir(tmp_path / "owner")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    now = int(time.time())
    Ingestor(dd).ingest_many([build_post(seed, {"CREATED_TIME": now - 10 + n, "TEXT": str(n)})
                              for n in range(3)], author=own)
    index = feeds._index(dd)
    before = feedorder.epoch(index)
    real_repair = index.repair

    def rebuild_once(idx: Index) -> None:  # the repair that runs first renumbers everything
        idx.repair = real_repair
        reconcile.rebuild(idx)

    index.repair = rebuild_once
    body, pending = exchange.build_request(
        asker=party().own, owner_fp=own, owner_transport=ids.public_key(own).transport_public,
        summary=summary, limit=10, now=now)
    got = exchange.open_response(serve_feed(dd, own, body, now=now, remote="192.0.2.3").read(),
                                 pending, max_bytes=10**7)
    after = feedorder.epoch(index)
    assert after != before  # the rebuild happened during the request
    positions = [p for p, _ in got.summary] if summary else got.positions
    assert len(positions) == 3
    assert got.epoch == after, "positions of the new numbering sent under the old epoch"
    assert positions == [p for p, _ in feedorder.feed_page(index, own, feeds.STRANGER,
                                                           after=0, limit=10)[0]]


def test_a_rebuild_after_a_missing_file_gives_the_epoch_of_the_positions_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page that found a file gone reads on past it in a second statement: a rebuild
    between the two sent the second statement's positions (the new numbering) under the
    first statement's epoch."""
    dd = make_datadir(tmp_path / "owner")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    now = int(time.time())
    posts = [build_post(seed, {"CREATED_TIME": now - 10 + n, "TEXT": str(n)}) for n in range(4)]
    stored = Ingestor(dd).ingest_many(posts, author=own).accepted
    index = feeds._index(dd)
    old_epoch = feedorder.epoch(index)
    old = {p for p, _ in feedorder.feed_page(index, own, feeds.STRANGER, after=0, limit=10)[0]}
    for gone in stored[:2]:  # removed behind the index's back: the page reads on past them
        (dd.posts / own / gone.sha1).unlink()
    real_drop = feedorder._drop_gone

    def drop_then_rebuild(idx: Index, shas: list[bytes]) -> None:
        real_drop(idx, shas)
        monkeypatch.setattr(feedorder, "_drop_gone", real_drop)
        reconcile.rebuild(idx)  # another process renumbers everything meanwhile

    monkeypatch.setattr(feedorder, "_drop_gone", drop_then_rebuild)
    got_epoch, found, _ = feedorder.epoch_and_files(index, own, feeds.STRANGER, after=0,
                                                    limit=3)
    new = {p for p, _ in feedorder.feed_page(index, own, feeds.STRANGER, after=0, limit=10)[0]}
    assert feedorder.epoch(index) != old_epoch  # the rebuild happened during the page
    numbering = old if got_epoch == old_epoch else new
    assert {p for p, _, _ in found} <= numbering, \
        "positions of the new numbering sent under the old epoch"
