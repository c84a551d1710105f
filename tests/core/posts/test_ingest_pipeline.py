"""Issue 14's ingest pipeline: signatures checked, and files written, by helper processes.

A batch ingested through the helpers must give exactly what checking in this process
gives (the same rejections, files, bytes and mtimes); a post the helper wrote but ingest
then refused leaves nothing; the data is flushed before any helper names a file and the
names after; and killing the ingesting process mid-batch leaves whole files only, an
index that agrees with them, and no helper behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.base import flush, fsio, verifyprocs
from app.core.identity.identities import Identities
from app.core.posts import ingest as ingest_module
from app.core.posts import records, storebatch
from app.core.posts.codec import build_post
from app.core.posts.index import Index
from app.core.posts.ingest import Ingestor
from app.core.posts.pipeline import ingest_batches
from app.core.posts.reconcile import reconcile, verify_file
from tests.core.posts.test_ingest import FP, SEEDS, T0, make_node, post, signed

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def clean_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """No unwritten data elsewhere on the machine: a batch takes the one-``syncfs`` path
    (base/flush.py picks it by the machine's ``Dirty`` bytes, which other programs and
    tests change; the per-file ``fsync`` path has its own tests below)."""
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: 0)


def _batch() -> list[bytes]:
    raws = [post("A", TEXT=f"post {i}", CREATED_TIME=T0 - i) for i in range(120)]
    raws[5] = raws[5][:-3] + (b"AAA" if raws[5][-3:] != b"AAA" else b"BBB")  # bad signature
    raws[9] = signed(b'{"CREATED_TIME": 1, "TEXT": 2}')                   # bad attribute
    raws[11] = post("A", CREATED_TIME=T0 + 10**6)                        # in the future
    raws[13] = signed(b"[1]")                                            # not an object
    raws[17] = raws[16]                                                  # twice
    raws[21] = post("B", TEXT="by B")                                    # B is blocked
    raws[30] = post("A", TEXT="deleted here")                            # deleted here
    return raws


def _files(root: Path) -> dict[str, tuple[bytes, float]]:
    return {f"{p.parent.name}/{p.name}": (p.read_bytes(), p.stat().st_mtime)
            for p in sorted((root / "posts").rglob("*")) if p.is_file()}


def _ingest(tmp: Path, processes: int) -> tuple[Any, dict[str, tuple[bytes, float]]]:
    dd, _ = make_node(tmp, known="AB", verify_processes=processes)
    Identities(dd).block(FP["B"])
    raws = _batch()
    records.forget(dd, Index(dd), FP["A"], hashlib.sha1(raws[30]).hexdigest())
    result = Ingestor(dd, now=T0).ingest_many(raws)
    return result, _files(tmp)


def test_helpers_give_exactly_what_checking_here_gives(tmp_path: Path) -> None:
    helped, files = _ingest(tmp_path / "helpers", 2)
    threads, same = _ingest(tmp_path / "threads", 0)
    assert helped.rejected == threads.rejected
    assert [r for _, r in helped.rejected] == ["bad_signature", "bad_attribute", "future_time",
                                               "bad_json", "blocked"]
    assert helped.refused == threads.refused == [30]
    assert [(a.sha1, a.new) for a in helped.accepted] == [(a.sha1, a.new)
                                                          for a in threads.accepted]
    assert files == same and len(files) == 120 - 5 - 1 - 1
    assert {name.split("/")[1] for name in files} == {a.sha1 for a in helped.accepted}
    assert not (tmp_path / "helpers" / "posts" / FP["B"]).exists()  # blocked: no folder
    assert sum(a.new for a in helped.accepted) == len(files)  # the repeat is not new


def test_the_data_is_flushed_before_a_helper_names_a_file_and_the_names_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dd, _ = make_node(tmp_path, known="A")
    events: list[str] = []
    real_start, real_codes = verifyprocs.Ticket.start_link, verifyprocs.Ticket.link_codes
    real_syncfs, real_fsync_dir = storebatch.syncfs, storebatch.fsync_dir

    def start_link(self: verifyprocs.Ticket, names: Any) -> Any:
        events.append(f"link {len(names)}")
        return real_start(self, names)

    def link_codes(self: verifyprocs.Ticket) -> Any:
        codes = real_codes(self)
        events.append("linked")
        return codes

    def syncfs(path: Path) -> None:
        real_syncfs(path)
        events.append("syncfs")

    def fsync_dir(path: Path) -> None:
        real_fsync_dir(path)
        events.append("fsync_dir")

    monkeypatch.setattr(verifyprocs.Ticket, "start_link", start_link)
    monkeypatch.setattr(verifyprocs.Ticket, "link_codes", link_codes)
    monkeypatch.setattr(storebatch, "syncfs", syncfs)
    monkeypatch.setattr(storebatch, "fsync_dir", fsync_dir)
    raws = [post("A", TEXT=f"p{i}") for i in range(100)]
    result = Ingestor(dd, now=T0).ingest_many(raws)
    assert len(result.accepted) == 100 and all(a.new for a in result.accepted)
    links = [i for i, e in enumerate(events) if e.startswith("link ")]
    assert links, events  # the helpers wrote the files
    assert events[0] == "syncfs" and events[-1] == "fsync_dir", events
    assert events.index("fsync_dir") > max(i for i, e in enumerate(events) if e == "linked")
    assert sum(int(e.split()[1]) for e in events if e.startswith("link ")) == 100


@pytest.mark.parametrize("authors", ["A", "ABC"])
def test_a_batch_flushes_its_names_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        authors: str) -> None:
    """The names of a batch are flushed by one call: the folder's fsync for one folder,
    one ``syncfs`` for several (never a ``syncfs`` and then an fsync of each folder:
    a batch mixing 100 authors paid 100 flushes more)."""
    dd, _ = make_node(tmp_path, known=authors)
    events: list[str] = []
    for name in ("syncfs", "fsync_dir"):
        real = getattr(storebatch, name)
        monkeypatch.setattr(storebatch, name,
                            lambda path, real=real, name=name: (real(path), events.append(name)))
    real_codes = verifyprocs.Ticket.link_codes

    def link_codes(self: verifyprocs.Ticket) -> Any:
        events.append("linked")
        return real_codes(self)

    monkeypatch.setattr(verifyprocs.Ticket, "link_codes", link_codes)
    raws = [post(authors[i % len(authors)], TEXT=f"p{i}") for i in range(90)]
    result = Ingestor(dd, now=T0).ingest_many(raws)
    assert len(result.accepted) == 90 and all(a.new for a in result.accepted)
    assert len(_files(tmp_path)) == 90
    names = events[max(i for i, e in enumerate(events) if e == "linked") + 1:]
    assert events[0] == "syncfs"  # the data, before any name
    assert names == (["fsync_dir"] if len(authors) == 1 else ["syncfs"]), events


@pytest.mark.parametrize("authors, deletion", [("A", False), ("AB", False), ("AB", True)])
def test_index_rows_are_durable_by_the_flush_that_ends_the_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, authors: str, deletion: bool) -> None:
    """A batch's index rows are flushed before ``ingest_many`` returns: by their own commit
    (``synchronous=FULL``) after the names' flush, or, for a batch whose names one
    ``syncfs`` flushes, committed unflushed right before it so that it flushes them too;
    a batch with a deletion record commits after the names (its targets are read first)."""
    dd, _ = make_node(tmp_path, known=authors)
    events: list[tuple[str, int]] = []
    monkeypatch.setattr(storebatch, "syncfs", lambda path, real=storebatch.syncfs: (
        real(path), events.append(("syncfs", 0))))
    monkeypatch.setattr(storebatch, "fsync_dir", lambda path, real=storebatch.fsync_dir: (
        real(path), events.append(("fsync_dir", 0))))
    real_write = Index.write

    @contextlib.contextmanager
    def write(self: Index) -> Iterator[Any]:
        with real_write(self) as c:
            yield c
            mode = c.execute("PRAGMA synchronous").fetchone()[0]
        events.append(("commit", mode))

    monkeypatch.setattr(Index, "write", write)
    raws = [post(authors[i % len(authors)], TEXT=f"p{i}") for i in range(90)]
    if deletion:
        raws[-1] = build_post(SEEDS["A"], {"CREATED_TIME": T0,
                                           "POST_DELETES": hashlib.sha1(raws[0]).hexdigest()})
    result = Ingestor(dd, now=T0).ingest_many(raws)
    assert len(result.accepted) == 90
    commit = next(i for i, e in enumerate(events) if e[0] == "commit")
    flushes = [e[0] for e in events[commit + 1:]]
    if len(authors) > 1 and not deletion:
        assert events[commit] == ("commit", 1) and flushes == ["syncfs"], events  # NORMAL
    else:
        assert events[commit] == ("commit", 2) and flushes == [], events  # FULL, last
    held = {bytes(r[0]).hex() for r in Index(dd).conn().execute("SELECT sha FROM posts")}
    assert held == {a.sha1 for a in result.accepted} - (
        {hashlib.sha1(raws[0]).hexdigest()} if deletion else set())
    assert Index(dd).conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again


def _ingest_batches(tmp: Path, pipelined: bool, ahead: int = 256
                    ) -> tuple[list[Any], dict[str, Any]]:
    dd, _ = make_node(tmp, known="AB", verify_ahead_posts=ahead)
    Identities(dd).block(FP["B"])
    raws = _batch()
    records.forget(dd, Index(dd), FP["A"], hashlib.sha1(raws[30]).hexdigest())
    batches = [raws[:40], raws[40:80], raws[80:], raws[10:20] + raws[100:110], raws[:3]]
    ingestor = Ingestor(dd, now=T0)
    results = list(ingest_batches(ingestor, batches) if pipelined
                   else (ingestor.ingest_many(b) for b in batches))
    shas = {bytes(r[0]).hex() for r in Index(dd).conn().execute("SELECT sha FROM posts")}
    return [(r.rejected, r.refused, [(a.sha1, a.new) for a in r.accepted])
            for r in results], {"files": _files(tmp), "indexed": shas}


@pytest.mark.parametrize("ahead", [0, 25, 100000])  # none, part of a batch, all of it
def test_batches_through_the_pipeline_give_what_one_batch_at_a_time_gives(
        tmp_path: Path, ahead: int) -> None:
    piped, stored = _ingest_batches(tmp_path / "piped", True, ahead)
    alone, same = _ingest_batches(tmp_path / "alone", False)
    assert piped == alone and stored == same
    assert set(stored["indexed"]) == {name.split("/")[1] for name in stored["files"]}
    assert [r for r, _, _ in piped][3] == [(1, "future_time"), (3, "bad_json")]
    assert not any(new for _, _, accepted in piped[3:] for _, new in accepted)  # repeats


def test_batches_are_committed_in_a_group_each_result_after_the_flush_of_its_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order :func:`ingest_batches` promises (group commit): per batch, one flush of
    its data (and of the previous batch's names and rows) on a thread, which then asks
    the helpers to name the batch's files; meanwhile, here, the next batch's checks are
    prepared and this batch's rows inserted; the next batch's file writes are sent only
    after the names were asked for, and the rows' COMMIT waits for the names; a result
    comes only after a flush that followed its rows, the last one's after a flush of its
    own. On ``e1160cc``..``06b3846`` this order was one flush for the data and one for
    the names per batch; on ``a56063f``..``a1eab74`` the rows went in only after the
    flush; until ``c65f15e`` the names were asked for here, after the rows went in."""
    dd, _ = make_node(tmp_path, known="A")
    events: list[tuple[str, str]] = []  # (thread, event): list.append is atomic

    def spy(owner: Any, name: str, before: str | None, after: str | None = None) -> None:
        real = getattr(owner, name)

        def record(*args: Any, **kwargs: Any) -> Any:
            if before:
                events.append((threading.current_thread().name, before))
            got = real(*args, **kwargs)
            if after:
                events.append((threading.current_thread().name, after))
            return got
        monkeypatch.setattr(owner, name, record)

    spy(storebatch, "syncfs", None, "flushed")   # on the flushing thread
    spy(ingest_module, "syncfs", None, "flushed")  # the last batch's own flush
    spy(storebatch, "fsync_dir", "fsync_dir")
    spy(storebatch, "_start_links", "link")
    spy(verifyprocs.VerifyPool, "write_later", "sent")
    spy(storebatch, "_finish_links", None, "linked")
    spy(Ingestor, "check_ahead", "ahead")
    spy(Index, "add_many", "index", "indexed")
    batches = [[post("A", TEXT=f"b{k} p{i}") for i in range(100)] for k in range(3)]
    for result in ingest_batches(Ingestor(dd, now=T0), batches):
        assert len(result.accepted) == 100 and all(a.new for a in result.accepted)
        events.append((threading.current_thread().name, "result"))
    main = threading.current_thread().name
    here = [e for t, e in events if t == main]
    there = [e for t, e in events if t != main]
    one = ["ahead", "index", "linked", "indexed"]
    last = ["index", "linked", "indexed", "result", "flushed", "result"]
    assert [e for e in here if e != "sent"] == [*one, *one, "result", *last], here
    assert there == ["flushed", "link"] * 3, there  # the names asked for right after
    order = [e for _, e in events]
    for k in range(2):  # each batch's next files sent after its names, before its COMMIT
        links = [i for i, e in enumerate(order) if e == "link"]
        sends = [i for i, e in enumerate(order) if e == "sent"]
        commits = [i for i, e in enumerate(order) if e == "indexed"]
        assert links[k] < sends[k] < commits[k], order
    results = [i for i, e in enumerate(order) if e == "result"]
    flushes = [i for i, e in enumerate(order) if e == "flushed"]
    commits = [i for i, e in enumerate(order) if e == "indexed"]
    for k, at in enumerate(results):  # reported after a flush that followed its COMMIT
        assert any(commits[k] < f < at for f in flushes), order


def test_checking_a_batch_does_not_wait_for_the_helpers_file_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a helper wrote a post's file (the answer to its ``F`` request, sent after
    the previous batch's names) is read when the batch is stored, never while its posts
    are checked: until ``c65f15e`` ``check_batch`` read it post by post and so waited
    for the helpers' file writes (~7 ms a batch of 500). Every post is still stored,
    each file named by the helper that wrote it."""
    dd, _ = make_node(tmp_path, known="A")
    where: list[str] = []
    phase = ["other"]
    real_codes = verifyprocs.Ticket.file_codes

    def file_codes(self: verifyprocs.Ticket) -> list[int]:
        where.append(phase[0])
        return real_codes(self)
    monkeypatch.setattr(verifyprocs.Ticket, "file_codes", file_codes)
    real_check = Ingestor.check_batch

    def check_batch(self: Ingestor, *args: Any, **kwargs: Any) -> Any:
        phase[0] = "check_batch"
        try:
            return real_check(self, *args, **kwargs)
        finally:
            phase[0] = "other"
    monkeypatch.setattr(Ingestor, "check_batch", check_batch)
    linked: list[int] = []
    real_finish = storebatch._finish_links

    def finish_links(sent: Any) -> Any:
        got = real_finish(sent)
        linked.append(len(got[0]))
        return got
    monkeypatch.setattr(storebatch, "_finish_links", finish_links)
    batches = [[post("A", TEXT=f"b{k} p{i}") for i in range(100)] for k in range(3)]
    results = list(ingest_batches(Ingestor(dd, now=T0), batches))
    assert [len(r.accepted) for r in results] == [100, 100, 100]
    assert where and "check_batch" not in where, where
    assert linked == [100, 100, 100]  # every file named by its helper, none written here


def test_a_file_a_helper_cannot_name_is_written_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the end-of-session tester: a helper names files through
    ``/proc/self/fd``; where it cannot (no ``/proc``, the folder gone meanwhile) every
    link answered FAILED and the whole ingest raised. Here the author's folder is
    removed after the helpers wrote their unnamed files: ingest writes them itself."""
    dd, _ = make_node(tmp_path, known="A")
    folder = dd.posts / FP["A"]
    real_syncfs = storebatch.syncfs

    def syncfs(path: Path) -> None:  # the flush before the helpers link: then the folder goes
        real_syncfs(path)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()

    monkeypatch.setattr(storebatch, "syncfs", syncfs)
    raws = [post("A", TEXT=f"p{i}") for i in range(100)]
    result = Ingestor(dd, now=T0).ingest_many(raws)
    assert len(result.accepted) == 100 and all(a.new for a in result.accepted)
    names = {hashlib.sha1(raw).hexdigest() for raw in raws}
    assert {p.name for p in folder.iterdir()} == names
    assert all((folder / hashlib.sha1(raw).hexdigest()).read_bytes() == raw for raw in raws)


_CHILD = """
import sys, os
sys.path.insert(0, {root!r})
from app.core.base.datadir import DataDir
from app.core.base import verifyprocs
from app.core.posts.ingest import Ingestor
dd = DataDir({data!r}, environ={{}})
from app.core.posts.pipeline import ingest_batches
raws = open({raws!r}, "rb").read().split(b"\\n")
ingestor = Ingestor(dd, now={now})
batches = [raws[start:start + 150] for start in range(0, len(raws), 150)]
results = (ingest_batches(ingestor, batches) if {pipelined}
           else (ingestor.ingest_many(b) for b in batches))
for n, result in enumerate(results):
    if n == 0:
        pool = verifyprocs.pool(dd.settings["verify_processes"])
        print(" ".join(str(h.proc.pid) for h in pool._helpers), flush=True)
    print(" ".join(a.sha1 for a in result.accepted), flush=True)  # durable and indexed
print("done", flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("pipelined, fsync_each", [(False, False), (True, False), (True, True)])
def test_killing_the_ingest_mid_batch_leaves_whole_files_and_a_consistent_index(
        tmp_path: Path, pipelined: bool, fsync_each: bool) -> None:
    """With ``pipelined``, through :func:`ingest_batches`: the next batch's files are
    being written by the helpers when the kill comes; every batch reported done is
    still there, files and index rows. With ``fsync_each`` (``flush_dirty_per_file`` 0:
    any unwritten data on the machine is too much for a syncfs), the files are written
    here and fsync-ed one by one."""
    extra = {"flush_dirty_per_file": 0} if fsync_each else {}
    dd, _ = make_node(tmp_path / "node", known="AB", **extra)
    rng = random.Random(14)
    kills = 0
    acknowledged: set[str] = set()
    for round_ in range(4):
        raws = [post("AB"[i % 2], TEXT=f"round {round_} post {i}") for i in range(1500)]
        (tmp_path / "raws").write_bytes(b"\n".join(raws))
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD.format(root=str(ROOT), data=str(dd.root),
                                                 raws=str(tmp_path / "raws"), now=T0,
                                                 pipelined=pipelined)],
            stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        helpers = [int(p) for p in child.stdout.readline().split()]
        assert helpers, "the child ingested its first batch through helpers"
        time.sleep(rng.uniform(0.0, 0.3))
        if child.poll() is None:
            child.kill()
            kills += 1
        child.wait()
        acknowledged.update(child.stdout.read().split())
        acknowledged.discard("done")
        child.stdout.close()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in helpers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in helpers), "a helper outlived its ingest"
    assert kills >= 2
    files = [p for p in dd.posts.rglob("*") if p.is_file()]
    assert not [p for p in files if fsio.is_temp_name(p.name)]
    assert all(verify_file(dd, p) is not None for p in files)  # whole, named by their SHA-1
    index = Index(dd)
    held = {p.name for p in files}
    indexed = {bytes(r[0]).hex() for r in index.conn().execute("SELECT sha FROM posts")}
    assert indexed <= held  # a row only for a file on disk
    assert acknowledged and acknowledged <= indexed  # what was reported done stayed
    reconcile(index, force=True)
    indexed = {bytes(r[0]).hex() for r in index.conn().execute("SELECT sha FROM posts")}
    assert indexed == held
    assert os.listdir(dd.posts)


def test_with_much_unwritten_data_each_file_is_fsynced_before_it_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``flush_dirty_per_file`` (base/flush.py) a batch pays no syncfs, which would
    wait for other programs' unwritten data (150 ms against 30 for 1,000 files after
    256 MiB, bench_sync): the helpers only check, and the batch writer fsyncs each file
    (data and inode) before any is named, then each folder."""
    dd, _ = make_node(tmp_path, known="AB")
    events: list[str] = []
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: 1 << 40)  # 1 TiB unwritten
    real_fsync_all, real_link, real_fsync_dir = flush.fsync_all, fsio.link_fd, fsio.fsync_dir

    def fsync_all(fds: Any) -> None:
        real_fsync_all(fds)
        events.extend(["fsync"] * len(fds))

    def link_fd(fd: int, path: str) -> None:
        real_link(fd, path)
        events.append("link")

    def fsync_dir(path: Path) -> None:
        real_fsync_dir(path)
        events.append("fsync_dir")

    def no_syncfs(path: Path) -> None:
        raise AssertionError("syncfs with 1 TiB of unwritten data")

    monkeypatch.setattr(flush, "fsync_all", fsync_all)
    monkeypatch.setattr(fsio, "link_fd", link_fd)
    monkeypatch.setattr(fsio, "fsync_dir", fsync_dir)
    monkeypatch.setattr(fsio, "syncfs", no_syncfs)
    monkeypatch.setattr(storebatch, "syncfs", no_syncfs)
    monkeypatch.setattr(verifyprocs.Ticket, "start_link", lambda *a: pytest.fail("a helper wrote"))
    raws = [post("AB"[i % 2], TEXT=f"p{i}") for i in range(60)]
    result = Ingestor(dd, now=T0).ingest_many(raws)
    assert len(result.accepted) == 60 and all(a.new for a in result.accepted)
    assert events.count("fsync") == 60 and events.count("link") == 60
    assert max(i for i, e in enumerate(events) if e == "fsync") < events.index("link")
    assert events[-2:] == ["fsync_dir", "fsync_dir"]  # the two authors' folders, last
    indexed = {bytes(r[0]).hex() for r in Index(dd).conn().execute("SELECT sha FROM posts")}
    assert indexed == {hashlib.sha1(raw).hexdigest() for raw in raws}
    assert all((dd.posts / FP["AB"[i % 2]] / hashlib.sha1(raw).hexdigest()).read_bytes() == raw
               for i, raw in enumerate(raws))


@pytest.mark.parametrize("unwritten", [0, 1 << 40], ids=["helpers write", "fsync each"])
def test_a_new_authors_folder_is_durable_before_a_file_in_it_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unwritten: int) -> None:
    """``posts/<FP>`` made for a new author has its entry in ``posts/`` flushed before
    any post in it is named, on both ways a batch is made durable (the per-file fsync
    way flushed the folder's own names but never its entry: a power cut could lose the
    folder with every post reported stored in it)."""
    dd, _ = make_node(tmp_path, known="AB")
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: unwritten)
    events: list[str] = []
    real_fsync_dir, real_link, real_start = fsio.fsync_dir, fsio.link_fd, \
        verifyprocs.Ticket.start_link
    monkeypatch.setattr(fsio, "fsync_dir",
                        lambda p: (real_fsync_dir(p), events.append(f"fsync_dir {p}")))
    monkeypatch.setattr(fsio, "link_fd", lambda fd, p: (real_link(fd, p), events.append("name")))
    monkeypatch.setattr(verifyprocs.Ticket, "start_link",
                        lambda self, names: (events.append("name"), real_start(self, names))[1])
    raws = [post("AB"[i % 2], TEXT=f"p{i}") for i in range(60)]
    result = Ingestor(dd, now=T0).ingest_many(raws)
    assert len(result.accepted) == 60 and all(a.new for a in result.accepted)
    assert "name" in events, events
    assert f"fsync_dir {dd.posts}" in events[:events.index("name")], events
    assert {p.name for p in dd.posts.iterdir()} == {FP["A"], FP["B"]}


def test_a_crash_that_keeps_early_rows_and_loses_their_names_is_repaired(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows committed unflushed right before the names' ``syncfs`` may reach the disk
    without the names (a crash during that flush: the log's pages written back, the
    folders' entries and mtimes not). The repair rescans only folders whose mtime
    changed, so the rows' folders are marked for a rescan in the rows' own transaction:
    the repair then drops the rows of files that are not there."""
    dd, _ = make_node(tmp_path, known="AB")
    index = Index(dd)
    Ingestor(dd, now=T0).ingest_many([post("AB"[i % 2], TEXT=f"old{i}") for i in range(4)])
    past = time.time_ns() - 3600 * 10**9  # settled mtimes, recorded by the repair
    for name in "AB":
        os.utime(dd.posts / FP[name], ns=(past, past))
    reconcile(index, force=True)
    rows_in: list[bool] = []
    real_add = Index.add_many

    def add_many(self: Index, posts: Any, **flush: bool) -> int:
        rows_in.append(bool(flush.get("flushed_later")))
        return real_add(self, posts, **flush)

    def crash(path: Path, real: Any = storebatch.syncfs) -> None:
        if any(rows_in):
            raise OSError("the machine stopped during this flush")
        real(path)

    monkeypatch.setattr(Index, "add_many", add_many)
    monkeypatch.setattr(storebatch, "syncfs", crash)
    raws = [post("AB"[i % 2], TEXT=f"new{i}") for i in range(90)]
    with pytest.raises(OSError, match="stopped"):
        Ingestor(dd, now=T0).ingest_many(raws)
    assert rows_in == [True]  # the rows went in unflushed
    for raw in raws:  # after the crash: the names were lost, the folders' mtimes with them
        author = "A" if raw in raws[::2] else "B"
        (dd.posts / FP[author] / hashlib.sha1(raw).hexdigest()).unlink()
    for name in "AB":
        os.utime(dd.posts / FP[name], ns=(past, past))
    reconcile(index, force=True)
    held = {bytes(r[0]).hex() for r in index.conn().execute("SELECT sha FROM posts")}
    on_disk = {p.name for name in "AB" for p in (dd.posts / FP[name]).iterdir()}
    assert held == on_disk, "rows of files that are not there survived the repair"


def test_rows_on_another_file_system_get_their_own_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index file linked to another file system (a faster disk): SQLite keeps its log
    beside the real file, which the posts' ``syncfs`` does not flush, so the rows commit
    with their own flush (``synchronous=FULL``)."""
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or fsio.same_file_system(elsewhere, tmp_path):
        missing = "/dev/shm on another file system than the test's folder"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run this test, but it lacks {missing}")
        pytest.skip(f"needs {missing}")
    dd, _ = make_node(tmp_path, known="AB")
    real = Path(tempfile.mkdtemp(dir=elsewhere)) / "index.sqlite3"
    try:
        Index(dd).path.symlink_to(real)
        modes: list[int] = []
        real_add = Index.add_many

        def add_many(self: Index, posts: Any, **flush: bool) -> int:
            modes.append(2 - bool(flush.get("flushed_later")))  # FULL 2, NORMAL 1
            return real_add(self, posts, **flush)

        monkeypatch.setattr(Index, "add_many", add_many)
        result = Ingestor(dd, now=T0).ingest_many(
            [post("AB"[i % 2], TEXT=f"p{i}") for i in range(90)])
        assert len(result.accepted) == 90 and (real.parent / "index.sqlite3-wal").exists()
        assert modes == [2], "rows committed unflushed in a log the posts' syncfs never sees"
    finally:
        Index(dd).close()
        shutil.rmtree(real.parent)
