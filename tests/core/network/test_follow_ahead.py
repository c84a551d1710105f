"""A sync checks the page it fetched ahead while it stores the page in hand (issue 14).

:meth:`app.core.network.follow.Walk.store` hands the store of a page
(:meth:`Ingestor.store_deferred`) a ``then`` that waits for the next page and starts its
signature checks (its files written once this page is named) on the helpers; the next
store passes those checks back to :meth:`Ingestor.check_batch` as ``ahead``. These tests drive a
:class:`Walk` with pages served from memory (real ingest, real helpers, real files).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.core.base import flush
from app.core.base.errors import PeerError
from app.core.network.exchangetypes import FeedResponse
from app.core.network.follow import Ask, AskFor, Walk
from app.core.network.syncstatus import SyncStatus
from app.core.posts import ingest as ingest_module
from app.core.posts import storebatch
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

    real = ingestor.check_batch

    def check_batch(raws: Any, **kwargs: Any) -> Any:
        ahead = kwargs.get("ahead")
        calls.append(ahead is not None and ahead.matches(raws, kwargs.get("author")))
        return real(raws, **kwargs)

    ingestor.check_batch = check_batch  # type: ignore[method-assign]
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


def test_a_pages_cursor_moves_only_once_the_page_is_flushed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit in a sync: a page's names and index rows are flushed by the next
    page's first ``syncfs`` (the last page's by one of its own), and its cursor moves
    only after that flush: a crash never leaves a cursor past posts that were lost."""
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: 0)  # the helpers write the files
    events: list[tuple[str, int]] = []
    real_syncfs = storebatch.syncfs

    def syncfs(path: Path) -> None:
        real_syncfs(path)
        events.append(("flushed", 0))
    monkeypatch.setattr(storebatch, "syncfs", syncfs)
    monkeypatch.setattr(ingest_module, "syncfs", syncfs)
    posts = [post("A", TEXT=f"p{i}", CREATED_TIME=T0 - i) for i in range(3 * PAGE + 5)]
    walk, ingestor, _ = _walk(tmp_path, posts)
    real_deferred = ingestor.store_deferred

    def store_deferred(checked: Any, then: Any = None) -> Any:
        got = real_deferred(checked, then)
        if got is not None:
            events.append(("stored", len(checked.posts)))
        return got
    ingestor.store_deferred = store_deferred  # type: ignore[method-assign]
    real_whole = ingestor.store_checked

    def store_checked(checked: Any, then: Any = None) -> Any:
        got = real_whole(checked, then)
        events.append(("whole", len(checked.posts)))  # durable when it returns
        return got
    ingestor.store_checked = store_checked  # type: ignore[method-assign]
    real_move = walk._move
    monkeypatch.setattr(walk, "_move", lambda device, epoch, after: (
        events.append(("move", after)), real_move(device, epoch, after)))
    assert walk.run() is True
    assert walk.status.cursors["dev"]["after"] == len(posts)
    stored_upto, durable_upto = 0, 0
    for kind, n in events:
        if kind == "stored":
            stored_upto += n
        elif kind == "whole":
            stored_upto += n
            durable_upto = stored_upto
        elif kind == "flushed":
            durable_upto = stored_upto
        else:
            assert n <= durable_upto, (n, durable_upto, events)
    assert ("stored", PAGE) in events, "pages went through the group commit"


def _fail_flush(monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """The ``nth`` data flush of the group commit fails (EIO); the others run."""
    real_syncfs, calls = storebatch.syncfs, []

    def syncfs(path: Path) -> None:
        calls.append(path)
        if len(calls) == nth:
            raise OSError(5, "syncfs failed: Input/output error")
        real_syncfs(path)
    monkeypatch.setattr(storebatch, "syncfs", syncfs)


def _run_with_a_failed_flush(tmp: Path, monkeypatch: pytest.MonkeyPatch, *, pages: int,
                             nth: int) -> Walk:
    """A walk over ``pages`` pages, the helpers writing the files, whose ``nth`` flush
    fails; its OSError comes out of :meth:`Walk.run`."""
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: 0)  # the helpers write the files
    posts = [post("A", TEXT=f"p{i}", CREATED_TIME=T0 - i) for i in range(pages * PAGE)]
    walk, _, _ = _walk(tmp, posts)
    _fail_flush(monkeypatch, nth)
    with pytest.raises(OSError, match="Input/output"):
        walk.run()
    return walk


def test_a_failed_flush_leaves_the_cursor_before_the_page_it_was_to_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the second page's flush (its data, the first page's names) fails
    walk = _run_with_a_failed_flush(tmp_path, monkeypatch, pages=3, nth=2)
    assert "dev" not in walk.status.cursors  # page one deferred: its flush never succeeded


def test_a_page_whose_flush_failed_never_moves_the_cursor_even_if_a_later_flush_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third page's flush (its data, the second page's names and rows) fails: the
    second page's cursor moves never happen, though the walk's last flush (in ``run``'s
    ``finally``) succeeds: a ``syncfs`` after a failed one does not report the earlier
    write-back error (a fresh descriptor), so it proves nothing about those names."""
    walk = _run_with_a_failed_flush(tmp_path, monkeypatch, pages=4, nth=3)
    assert walk.status.cursors["dev"]["after"] == PAGE  # flushed by the second page's syncfs


def test_a_failed_flush_before_a_whole_page_drops_its_files_and_moves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second page cannot be deferred (one post the helpers did not check) and the
    flush of the first page, before it is stored whole, fails: the OSError comes out,
    the first page's cursor does not move (not even after the walk's last flush) and
    the helpers drop the second page's files (none left held)."""
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: 0)  # the helpers write the files
    posts = [post("A", TEXT=f"p{i}", CREATED_TIME=T0 - i) for i in range(3 * PAGE)]
    walk, ingestor, _ = _walk(tmp_path, posts)
    checked: list[Any] = []
    real_check, real_deferred = ingestor.check_batch, ingestor.store_deferred

    def check_batch(raws: Any, **kwargs: Any) -> Any:
        checked.append(real_check(raws, **kwargs))
        if len(checked) == 2:  # a post no helper holds: the page is stored whole
            checked[-1].held.pop(checked[-1].posts[0].sha1)
        return checked[-1]
    ingestor.check_batch = check_batch  # type: ignore[method-assign]
    fails = [1]

    def failing_flush() -> None:
        if fails:
            fails.pop()
            raise OSError(5, "syncfs failed: Input/output error")
        ingest_module.syncfs(ingestor.dd.posts)
    ingestor.flush = failing_flush  # type: ignore[method-assign]
    ingestor.store_deferred = real_deferred  # type: ignore[method-assign]
    with pytest.raises(OSError, match="Input/output"):
        walk.run()
    assert "dev" not in walk.status.cursors
    assert len(checked) == 2 and checked[1].sent == [], "the second page's files are held"
