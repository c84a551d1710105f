"""A post stored while its index write failed (a full disk) is listed by the very next
query, not only once the repair's throttle interval has passed (found by the full-disk
test once the search text made index writes larger)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.core.posts.index import Index
from app.core.posts.reconcile import open_index
from tests.helpers.post_kit import PostKit


def test_the_next_query_lists_a_post_whose_index_write_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kit = PostKit(tmp_path / "n", reconcile_interval_ms=3_600_000)
    reader = open_index(kit.dd)
    a = kit.author(1)
    kit.post(a, 100, TEXT="indexed")
    assert len(reader.page(limit=10).items) == 1  # a repair ran: the throttle holds now

    def full(self: Index, posts: object) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as m:
        m.setattr(Index, "add_many", full)
        stored = kit.post(a, 200, TEXT="stored, not indexed")
    assert (kit.dd.posts / a / stored.sha1).exists()
    assert [e.sha1 for e in reader.page(limit=10).items][0] == stored.sha1
