"""Issue 14's group commit: :func:`ingest_batches` flushes each batch's names and index
rows with the next batch's data (one ``syncfs`` a batch), and reports a batch only after
that flush. Its failure paths: a flush that fails reports nothing it covered; a file a
helper cannot name is written here before the rows commit; a write that fails then rolls
the rows back; an index that fails is repaired; a batch that cannot wait (a deletion
record) is stored whole, after the last deferred batch is flushed; an interrupt while
the helpers' file answers are read leaves no file held.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.base import flush, fsio, verifyprocs
from app.core.posts import index as index_module
from app.core.posts import ingest as ingest_module
from app.core.posts import ingestresults, storebatch
from app.core.posts.codec import Parts, build_post
from app.core.posts.index import Index
from app.core.posts.ingest import Ingestor
from app.core.posts.pipeline import ingest_batches
from tests.core.posts.test_ingest import FP, SEEDS, T0, make_node, post


@pytest.fixture(autouse=True)
def clean_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-``syncfs`` path (helpers write the files), whatever else the machine has
    unwritten (base/flush.py)."""
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: 0)


def _batches(k: int, n: int = 100, who: str = "A") -> list[list[bytes]]:
    return [[post(who, TEXT=f"b{b} p{i}") for i in range(n)] for b in range(k)]


def _rows(dd: Any) -> set[str]:
    return {bytes(r[0]).hex() for r in Index(dd).conn().execute("SELECT sha FROM posts")}


def _names(dd: Any, who: str = "A") -> set[str]:
    folder = dd.posts / FP[who]
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _shas(raws: list[bytes]) -> set[str]:
    return {hashlib.sha1(raw).hexdigest() for raw in raws}


def _second_flush_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The group commit's second ``syncfs`` (the second batch's data, the first batch's
    names and rows) fails with EIO; the others run."""
    real, calls = storebatch.syncfs, []

    def syncfs(path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.EIO, "syncfs failed: Input/output error")
        real(path)
    monkeypatch.setattr(storebatch, "syncfs", syncfs)


def _reported_until_it_fails(dd: Any, batches: list[list[bytes]]) -> list[Any]:
    """The results ``ingest_batches`` yields before it raises the flush's EIO."""
    reported: list[Any] = []
    with pytest.raises(OSError, match="Input/output"):
        for result in ingest_batches(Ingestor(dd, now=T0), batches):
            reported.append(result)
    return reported


def _insert_fails_once(monkeypatch: pytest.MonkeyPatch, message: str,
                       when: Callable[[], bool]) -> list[int]:
    """The index's bulk insert raises ``sqlite3.OperationalError(message)`` the first time
    it is called while ``when()``; the list returned is emptied then."""
    real, failures = index_module.insert_bulk, [1]

    def insert_bulk(*args: Any) -> int:
        if failures and when():
            failures.pop()
            raise sqlite3.OperationalError(message)
        return real(*args)
    monkeypatch.setattr(index_module, "insert_bulk", insert_bulk)
    return failures


def test_a_failed_flush_reports_nothing_it_was_to_make_durable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second batch's flush (its data, the first batch's names and rows) fails: the
    first batch, stored but not flushed, is never reported, and none of the second
    batch's files gets a name."""
    dd, _ = make_node(tmp_path, known="A")
    _second_flush_fails(monkeypatch)
    batches = _batches(3)
    assert _reported_until_it_fails(dd, batches) == []
    assert _names(dd) == _shas(batches[0])  # named, not reported: a later ingest finds them
    assert _rows(dd) == _shas(batches[0])


def _folder_gone_at_first_flush(dd: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The author's folder is removed right after the first batch's data flush (its
    files are written, unnamed): every helper's link of that batch fails (ENOENT)."""
    folder, real = dd.posts / FP["A"], storebatch.syncfs

    def syncfs(path: Path) -> None:
        real(path)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    monkeypatch.setattr(storebatch, "syncfs", syncfs)


def test_a_file_a_helper_cannot_name_is_written_here_before_the_rows_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The helpers cannot name the first batch's files: they are written here, inside
    the index transaction (before its COMMIT), and every result holds every post."""
    dd, _ = make_node(tmp_path, known="A")
    _folder_gone_at_first_flush(dd, monkeypatch)
    batches = _batches(3)
    results = list(ingest_batches(Ingestor(dd, now=T0), batches))
    assert [len(r.accepted) for r in results] == [100, 100, 100]
    assert all(a.new for r in results for a in r.accepted)
    every = _shas([raw for b in batches for raw in b])
    assert _names(dd) == every and _rows(dd) == every
    folder = dd.posts / FP["A"]
    assert all((folder / hashlib.sha1(raw).hexdigest()).read_bytes() == raw
               for b in batches for raw in b)


def test_a_write_that_fails_before_the_commit_rolls_the_rows_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The helpers cannot name the first batch's files and writing them here fails too:
    the OSError comes out and no row is committed (a row only for a named file)."""
    dd, _ = make_node(tmp_path, known="A")
    _folder_gone_at_first_flush(dd, monkeypatch)

    def write_here(posts_dir: Path, posts: Any, **kw: Any) -> set[str]:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(storebatch, "_write_here", write_here)
    with pytest.raises(OSError, match="No space"):
        for _ in ingest_batches(Ingestor(dd, now=T0), _batches(3)):
            pytest.fail("a batch was reported")
    assert _rows(dd) == set() and _names(dd) == set()


def test_an_index_that_fails_is_caught_up_and_the_batch_still_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk insert of the second batch fails once: its files are still named, its
    result reported, and its rows added by the retry after the names."""
    dd, _ = make_node(tmp_path, known="A")
    failures = _insert_fails_once(monkeypatch, "disk I/O error",
                                  lambda: len(_rows(dd)) == 100)
    batches = _batches(3)
    results = list(ingest_batches(Ingestor(dd, now=T0), batches))
    assert not failures, "the failure was injected"
    assert [len(r.accepted) for r in results] == [100, 100, 100]
    every = _shas([raw for b in batches for raw in b])
    assert _names(dd) == every and _rows(dd) == every


def test_a_deletion_record_is_stored_whole_after_the_last_batch_is_flushed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch with a deletion record cannot be deferred (its targets are read before it
    is indexed): the batch before it is flushed and reported first, then it is stored
    whole; results, files and rows equal those of one ``ingest_many`` at a time."""
    outcome = {}
    for mode in ("pipelined", "alone"):
        dd, _ = make_node(tmp_path / mode, known="A")
        first = [post("A", TEXT=f"p{i}") for i in range(100)]
        doomed = hashlib.sha1(first[7]).hexdigest()
        second = [post("A", TEXT=f"q{i}") for i in range(99)]
        second.append(build_post(SEEDS["A"], {"CREATED_TIME": T0 + 1, "POST_DELETES": doomed}))
        third = [post("A", TEXT=f"r{i}") for i in range(100)]
        ingestor = Ingestor(dd, now=T0 + 5)
        batches = [first, second, third]
        results = list(ingest_batches(ingestor, batches) if mode == "pipelined"
                       else (ingestor.ingest_many(b) for b in batches))
        outcome[mode] = ([(r.rejected, r.refused, [(a.sha1, a.new) for a in r.accepted])
                          for r in results], _names(dd), _rows(dd))
        assert doomed not in _names(dd) and doomed not in _rows(dd)
    assert outcome["pipelined"] == outcome["alone"]


def test_a_failed_flush_before_a_whole_batch_drops_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch after a deferred one has a deletion record (stored whole, after the
    flush of the last deferred batch) and that flush fails: the OSError comes out,
    nothing is reported, and the helpers drop the files they wrote for the second batch
    (none left held: a helper is long-lived)."""
    dd, _ = make_node(tmp_path, known="A")
    ingestor = Ingestor(dd, now=T0 + 5)
    first = [post("A", TEXT=f"p{i}") for i in range(100)]
    second = [post("A", TEXT=f"q{i}") for i in range(99)]
    second.append(build_post(SEEDS["A"], {"CREATED_TIME": T0 + 1,
                                          "POST_DELETES": hashlib.sha1(first[7]).hexdigest()}))
    checked: list[Any] = []
    real_check = ingestor.check_batch

    def check_batch(raws: Any, **kwargs: Any) -> Any:
        checked.append(real_check(raws, **kwargs))
        return checked[-1]
    monkeypatch.setattr(ingestor, "check_batch", check_batch)

    def failing_flush() -> None:
        raise OSError(errno.EIO, "syncfs failed: Input/output error")
    monkeypatch.setattr(ingestor, "flush", failing_flush)
    with pytest.raises(OSError, match="Input/output"):
        for _ in ingest_batches(ingestor, [first, second]):
            pytest.fail("a batch was reported")
    assert len(checked) == 2 and checked[1].held, "the helpers wrote the second batch"
    assert checked[1].sent == [], "the second batch's files are still held"


def test_a_new_authors_folder_is_flushed_by_the_syncfs_before_its_first_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found when measuring (stop 26): each new author's folder cost an fsync of
    ``posts/`` (~2 ms, waiting for the running flush) while the next batch was prepared,
    on the ingest's critical path. It is now made without one: the ``syncfs`` that comes
    before any name in it flushes its entry. Here every folder is made before a flush
    that ends before the first link into it, and ``posts/`` is never fsync-ed."""
    dd, _ = make_node(tmp_path, known="ABC")
    events: list[tuple[str, str]] = []
    real_mkdir = ingest_module.make_private_dir
    real_syncfs = storebatch.syncfs
    real_link = verifyprocs.Ticket.start_link

    def mkdir(path: Path) -> None:
        events.append(("mkdir", path.name))
        real_mkdir(path)

    def syncfs(path: Path) -> None:
        real_syncfs(path)
        events.append(("flushed", ""))

    def start_link(ticket: Any, names: list[tuple[int, str]]) -> Any:
        events.extend(("link", name.split("/")[-2]) for _, name in names)
        return real_link(ticket, names)
    monkeypatch.setattr(ingest_module, "make_private_dir", mkdir)
    monkeypatch.setattr(storebatch, "syncfs", syncfs)
    monkeypatch.setattr(ingest_module, "syncfs", syncfs)
    monkeypatch.setattr(verifyprocs.Ticket, "start_link", start_link)
    monkeypatch.setattr(fsio, "fsync_dir", lambda p: events.append(("fsync", Path(p).name)))
    monkeypatch.setattr(storebatch, "fsync_dir", lambda p: events.append(("fsync", Path(p).name)))
    batches = [*_batches(2, 100, "A"), *_batches(1, 100, "B"), *_batches(2, 100, "C")]
    for result in ingest_batches(Ingestor(dd, now=T0), batches):
        assert len(result.accepted) == 100 and all(a.new for a in result.accepted)
    assert ("fsync", "posts") not in events
    made = [k for k, (e, _) in enumerate(events) if e == "mkdir"]
    assert sorted(events[k][1] for k in made) == sorted(FP[w] for w in "ABC")
    for k in made:
        folder = events[k][1]
        first_link = next(j for j, e in enumerate(events) if e == ("link", folder))
        assert ("flushed", "") in events[k:first_link], events


def test_rows_added_again_after_a_failed_insert_still_mark_the_folder_for_rescan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the tester (stop 26): the bulk insert fails before ``finish`` (no name
    yet); the names are made, then ``_finish`` adds the rows again. That second commit
    came before the next ``syncfs`` (the names not flushed) and, unlike the group
    commit's own, was flushed at once and did not mark the folder for the repair's
    rescan: a crash then kept rows for names it lost, in a folder whose mtime the repair
    trusted. The rows added again are marked like the first ones (and left to that
    ``syncfs``)."""
    dd, _ = make_node(tmp_path, known="A")
    Ingestor(dd, now=T0).ingest(post("A", TEXT="before"))
    folder = dd.posts / FP["A"]
    with Index(dd).write() as c:  # the folder as a repair settled it
        c.execute("INSERT OR REPLACE INTO dirs(fp, mtime_ns) VALUES (?, ?)",
                  (FP["A"], folder.stat().st_mtime_ns))
    failures = _insert_fails_once(monkeypatch, "database is locked", lambda: True)
    batches = _batches(1)
    results = list(ingest_batches(Ingestor(dd, now=T0), batches))
    assert not failures, "the failure was injected"
    assert [len(r.accepted) for r in results] == [100]
    assert _shas(batches[0]) <= _rows(dd) and _shas(batches[0]) <= _names(dd)
    marks = dict(Index(dd).conn().execute("SELECT fp, mtime_ns FROM dirs").fetchall())
    assert marks[FP["A"]] == 0, "the rows reached the disk unmarked before the names"


def test_a_flush_error_the_index_reports_as_its_own_still_fails_the_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the tester (stop 26): ``finish`` (its rows' ``before_commit``) raises the
    failed flush's error, but the index layer raises an error of its own instead (say
    its clean-up after the ROLLBACK failed too): ingest took that for an index failure,
    called ``finish`` again, which returned as if done, and the batches whose names that
    flush was to make durable were reported (nothing of the second one named). A
    ``finish`` that failed fails again."""
    dd, _ = make_node(tmp_path, known="A")
    _second_flush_fails(monkeypatch)
    real_add = Index.add_many

    def add_many(self: Index, posts: Any, **kw: Any) -> int:
        before = kw.get("before_commit")
        if before is not None:
            def replaced() -> None:
                try:
                    before()
                except OSError as exc:
                    raise sqlite3.OperationalError("disk I/O error") from exc
            kw["before_commit"] = replaced
        return real_add(self, posts, **kw)
    monkeypatch.setattr(Index, "add_many", add_many)
    batches = _batches(3)
    assert _reported_until_it_fails(dd, batches) == []
    assert _names(dd) == _shas(batches[0]) and _rows(dd) == _shas(batches[0])


def _helper_tmpfiles(dd: Any) -> int:
    """Unnamed (``O_TMPFILE``) files the helpers still hold under this node's posts,
    once they have read what was sent them (a release is not waited for: up to 5 s)."""
    pool = verifyprocs.pool(2)
    assert pool is not None

    def count() -> int:
        held = 0
        for helper in pool._helpers:
            fds = f"/proc/{helper.proc.pid}/fd"
            for fd in os.listdir(fds):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"{fds}/{fd}")
                    held += target.startswith(os.fspath(dd.posts)) and "(deleted)" in target
        return held
    deadline = time.monotonic() + 5
    while count() and time.monotonic() < deadline:
        time.sleep(0.05)
    return count()


def _interrupted_reading_files(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """The ``at``-th read of whether a helper wrote a post's file raises
    ``KeyboardInterrupt`` (a ^C while the helpers' file writes are waited for)."""
    real, calls = ingestresults.written, [0]

    def written(*args: Any) -> bool:
        calls[0] += 1
        if calls[0] == at:
            raise KeyboardInterrupt
        return real(*args)
    monkeypatch.setattr(ingestresults, "written", written)


def test_an_interrupt_while_the_file_answers_are_read_drops_the_batchs_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the end-of-stop tester (stop 28): whether a helper wrote each post's file
    is read when the batch is stored (``Checked.held``), and at ``0e17a18`` that read
    came before the store's ``try`` that closes the batch: an interrupt there left the
    batch's 100 unnamed files held by the helpers until the process ended. In a group
    commit (the second batch) and through ``ingest_many``, nothing is left held."""
    dd, _ = make_node(tmp_path, known="AB")
    _interrupted_reading_files(monkeypatch, 150)  # the second batch's files
    with pytest.raises(KeyboardInterrupt):
        for _ in ingest_batches(Ingestor(dd, now=T0), _batches(3)):
            pass
    assert not [t for t in threading.enumerate() if t.name == "diwan-flush"]
    assert _helper_tmpfiles(dd) == 0
    _interrupted_reading_files(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        Ingestor(dd, now=T0).ingest_many(_batches(1, who="B")[0])
    assert _helper_tmpfiles(dd) == 0


def test_a_checked_batch_keeps_no_split_post(tmp_path: Path) -> None:
    """Found by the end-of-stop tester (stop 28): a checked batch waiting to be stored
    kept each accepted post's whole check, its split post (P1 and its decoded bytes)
    included, ~1.7 times the batch's size again; it keeps only the helper's request and
    the post's place in it."""
    dd, _ = make_node(tmp_path, known="A")
    ingestor = Ingestor(dd, now=T0)
    checked = ingestor.check_batch(_batches(1)[0])
    try:
        assert len(checked.files) == 100
        assert all(len(entry) == 3 and not any(isinstance(x, Parts | bytes | dict)
                                               for x in entry) for entry in checked.files)
        assert len(checked.held) == 100
    finally:
        checked.close()
