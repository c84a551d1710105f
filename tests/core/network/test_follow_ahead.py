"""A sync checks the page it fetched ahead while it stores the page in hand (issue 14).

:meth:`app.core.network.follow.Walk.store` hands :meth:`Ingestor.ingest_many` a ``then``
that waits for the next page and starts its signature checks (and file writes) on the
helpers; the next store passes those checks back as ``ahead``. These tests drive a
:class:`Walk` with pages served from memory (real ingest, real helpers, real files).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.core.base.errors import PeerError
from app.core.network.exchangetypes import FeedResponse
from app.core.network.follow import Ask, AskFor, Walk
from app.core.network.syncstatus import SyncStatus
from app.core.posts.index import Index
from app.core.posts.ingest import Ingestor
from app.core.posts.signatures import Ahead
from tests.core.posts.test_ingest import FP, T0, make_node, post

PAGE = 80
SETTINGS = {"sync_max_pages": 100, "max_page_size": PAGE, "sync_page_size": PAGE,
            "max_summary_entries": 1000}


def _walk(tmp: Path, posts: list[bytes], *, fail_at: int | None = None,
          rebuilt_at: int | None = None) -> tuple[Walk, Ingestor, list[Any]]:
    """A walk over ``posts`` (positions 1..n); the page after position ``fail_at``
    fails to arrive; from the page after ``rebuilt_at`` on, the owner answers with
    another epoch (its index was rebuilt) and an empty summary."""
    dd, _ = make_node(tmp, known="A")
    ingestor = Ingestor(dd, now=T0)
    pool = ThreadPoolExecutor(1)
    calls: list[Any] = []

    def page(ask: Ask) -> FeedResponse:
        if ask.after == fail_at:
            raise PeerError("the owner's node went away")
        epoch = 8 if rebuilt_at is not None and ask.after >= rebuilt_at else 7
        if ask.summary:
            return FeedResponse([], False, b"", epoch=epoch)
        got = posts[ask.after:ask.after + ask.limit]
        return FeedResponse(got, ask.after + len(got) < len(posts), b"", epoch=epoch,
                            positions=list(range(ask.after + 1, ask.after + len(got) + 1)))

    def fetch(ask: AskFor, background: bool) -> Future[FeedResponse]:
        asked = ask("dev") if callable(ask) else ask
        if background:
            return pool.submit(page, asked)
        done: Future[FeedResponse] = Future()
        done.set_result(page(asked))
        return done

    real = ingestor.ingest_many

    def ingest_many(raws: Any, **kwargs: Any) -> Any:
        ahead = kwargs.get("ahead")
        calls.append(ahead is not None and ahead.matches(raws, kwargs.get("author")))
        return real(raws, **kwargs)

    ingestor.ingest_many = ingest_many  # type: ignore[method-assign]
    walk = Walk(status=SyncStatus(FP["A"]), settings=SETTINGS,
                index=Index(dd), author=FP["A"], identity="b" * 64, full=False,
                fetch=fetch, ingestor=ingestor, device=lambda: "dev")
    return walk, ingestor, calls


def _stored(ingestor: Ingestor) -> int:
    return sum(1 for _ in (ingestor.dd.posts / FP["A"]).iterdir())


def test_each_page_after_the_first_arrives_with_its_checks_started(tmp_path: Path) -> None:
    posts = [post("A", TEXT=f"p{i}", CREATED_TIME=T0 - i) for i in range(3 * PAGE + 5)]
    walk, ingestor, calls = _walk(tmp_path, posts)
    assert walk.run() is True
    assert calls == [False, True, True, True]  # the first page had nothing ahead
    assert _stored(ingestor) == len(posts)
    assert walk.status.cursors["dev"]["after"] == len(posts)


def test_a_next_page_that_fails_leaves_this_page_stored_and_is_raised(tmp_path: Path) -> None:
    posts = [post("A", TEXT=f"p{i}", CREATED_TIME=T0 - i) for i in range(3 * PAGE)]
    walk, ingestor, calls = _walk(tmp_path, posts, fail_at=2 * PAGE)
    with pytest.raises(PeerError, match="went away"):
        walk.run()
    assert calls == [False, True]
    assert _stored(ingestor) == 2 * PAGE
    assert walk.status.cursors["dev"]["after"] == 2 * PAGE


def test_checks_started_for_a_page_never_stored_are_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page fetched ahead and checked comes from a rebuilt index (another epoch):
    the walk compares instead of storing it, and its checks are dropped (the helpers'
    unnamed files vanish)."""
    closed: list[int] = []
    real_close = Ahead.close

    def close(self: Ahead) -> None:
        closed.append(len(self.raws))
        real_close(self)

    monkeypatch.setattr(Ahead, "close", close)
    posts = [post("A", TEXT=f"p{i}", CREATED_TIME=T0 - i) for i in range(3 * PAGE)]
    walk, ingestor, calls = _walk(tmp_path, posts, rebuilt_at=2 * PAGE)
    assert walk.run() is True
    assert calls == [False, True]
    assert closed == [PAGE]  # the third page, fetched ahead, never stored
    assert _stored(ingestor) == 2 * PAGE
