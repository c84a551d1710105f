"""Repairing the post index from the post files, at a cost that does not grow with all posts.

The index (:mod:`app.core.posts.index`) records each author directory's ``mtime_ns``
(table ``dirs``) and that of ``posts/`` itself (table ``meta``). A reconcile:

1. stats ``posts/``; only if its mtime changed does it list it (new or removed
   author directories);
2. stats each author directory; only those whose mtime changed are listed and
   diffed against their rows: new names are verified like any received post
   (:func:`verify_file`: signature, name, directory, attributes) and indexed
   if valid, never otherwise; rows whose file is gone are dropped;
3. records the mtimes read *before* listing, so a change during the scan is
   seen next time. An mtime younger than :data:`RACY_NS` is recorded as 0
   (rescan next time): a file added in the same clock tick as the scan would
   otherwise leave the mtime unchanged and go unnoticed.

So the cost is one stat per author plus work proportional to what changed.
Dot and temporary names (``fsio.is_temp_name``) are never indexed. Reconciles
are serialised across processes by a file lock and throttled per process. The
automatic repair a query runs never waits for another process's (it skips) and
verifies at most ``reconcile_max_verify`` new files (a directory left unfinished
keeps its old mtime, so the next query carries on): a query never stalls
for long, even over a data directory whose index was deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.diskspace import is_full_error
from ..base.errors import BadPost
from ..base.fsio import file_lock, is_temp_name
from . import repairdue
from .codec import Post
from .index import Index
from .indexschema import CONTENT_TABLES
from .ingest import Ingestor

log = logging.getLogger("diwan.index")
RACY_NS = 2_000_000_000  # a directory changed this recently may change again in the same tick
VERIFY_BATCH = 2000      # files verified and indexed per transaction
LOCK_NAME = "index-reconcile.lock"



@dataclass
class ReconcileReport:
    """What one reconcile did: author directories rescanned, posts ``added`` to and
    ``removed`` from the index, files found ``invalid`` (not indexed), the verification
    ``budget`` left (None: no limit) and whether it stopped ``unfinished``; a full
    :func:`rebuild` may also set ``progress`` and a process ``pool``."""

    dirs_scanned: int = 0
    added: int = 0
    removed: int = 0
    invalid: int = 0
    budget: int | None = None  # new files that may still be verified (None: no limit)
    unfinished: bool = False   # the budget ran out; the next reconcile carries on
    progress: Callable[[int], None] | None = None  # told each count of files verified
    pool: ProcessPoolExecutor | None = None        # verifies in other processes if set
    workers: int = 1                               # processes in ``pool``


def open_index(dd: DataDir, *, auto_reconcile: bool = True) -> Index:
    """The index of ``dd`` as readers use it: with ``auto_reconcile`` every query first
    runs :func:`auto_repair` (throttled, bounded, never waits for another process)."""
    return Index(dd, repair=auto_repair if auto_reconcile else None)


def auto_repair(index: Index) -> None:
    """The automatic repair a query runs first: at most ``reconcile_max_verify`` new
    files verified, skipped if run within ``reconcile_interval_ms`` or running elsewhere.

    On a full disk the repair is put off (logged) and the query answers from the index
    as it is: a read never fails for want of space; the next query after space returns
    carries on. Likewise when the database stays locked by a writer (the repair is
    opportunistic and never makes a read fail): it is put off to the next query.
    """
    try:
        reconcile(index, max_verify=index.dd.settings["reconcile_max_verify"])
    except sqlite3.OperationalError as exc:
        if is_full_error(exc):
            log.warning("index repair put off: the disk is full (%s)", exc)
        elif "locked" in str(exc):
            log.info("index repair put off: the index is busy (%s)", exc)
        else:
            raise
        repairdue.repair_soon(index.dd)  # try again at the next query
    except (OSError, sqlite3.Error) as exc:
        if not is_full_error(exc):
            raise
        log.warning("index repair put off: the disk is full (%s)", exc)
        repairdue.repair_soon(index.dd)


def reconcile(index: Index, *, force: bool = False,
              max_verify: int | None = None) -> ReconcileReport | None:
    """Repair ``index``; None if skipped: run by this process within the interval
    (unless ``force``), or, when ``max_verify`` is set (automatic repair), running
    in another process right now.

    ``max_verify`` caps the new files verified (the next call carries on). Raises no
    project error: invalid files are counted, not raised; ``sqlite3.Error`` or ``OSError``
    if the database or the directory cannot be used.
    """
    key = str(index.path)
    interval = index.dd.settings["reconcile_interval_ms"] / 1000
    now = time.monotonic()
    if not repairdue.claim(key, now, interval, force=force):
        return None
    with _lock(index.dd.locks / LOCK_NAME, wait=max_verify is None) as locked:
        return _reconcile(index, ReconcileReport(budget=max_verify)) if locked else None


@contextlib.contextmanager
def _lock(path: Path, *, wait: bool) -> Iterator[bool]:
    """``fsio.file_lock``, or without ``wait`` yield False at once if it is held."""
    if wait:
        with file_lock(path):
            yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def rebuild(index: Index, *, workers: int = 1,
            progress: Callable[[int], None] | None = None) -> int:
    """Empty the index and rescan every file (replacing a damaged database file).

    ``workers`` > 1 verifies the files in that many processes (same outcome as one: the
    index is written by this process only, in the same order); ``progress(n)`` is called
    after each ``n`` files verified (see :func:`count_post_files` for the total).
    Returns the number of posts indexed; waits for any reconcile running elsewhere. Raises
    no project error (``sqlite3.Error`` or ``OSError`` if the state directory is unusable).
    """
    report = ReconcileReport(progress=progress, workers=workers)
    with contextlib.ExitStack() as stack, file_lock(index.dd.locks / LOCK_NAME):
        if workers > 1:
            report.pool = stack.enter_context(_process_pool(index.dd, workers))
        try:
            _clear(index)
        except sqlite3.DatabaseError:  # not a database any more: start afresh
            index.reset()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{index.path}{suffix}").unlink(missing_ok=True)
        _reconcile(index, report)
    return index.count()


def count_post_files(dd: DataDir) -> int:
    """How many files under ``posts/`` are named as posts (``<FP>/<SHA1>``): the total
    a :func:`rebuild` reports progress towards."""
    total = 0
    for fp in _author_dirs_of(dd):
        try:
            with os.scandir(dd.posts / fp) as entries:
                total += sum(1 for e in entries if names.SHA1_RE.fullmatch(e.name))
        except OSError:
            continue
    return total


def _process_pool(dd: DataDir, workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_pool_init, initargs=(str(dd.root), dict(dd.settings)))


_pool_dd: DataDir | None = None


def _pool_init(root: str, settings: dict[str, Any]) -> None:
    global _pool_dd
    _pool_dd = DataDir(Path(root), overrides=settings, environ={})


def _pool_verify(path: str) -> Post | None:
    assert _pool_dd is not None
    return verify_file(_pool_dd, Path(path))


def _clear(index: Index) -> None:
    with index.write() as c:
        for table in CONTENT_TABLES:
            c.execute(f"DELETE FROM {table}")


def _reconcile(index: Index, report: ReconcileReport) -> ReconcileReport:
    c = index.conn()
    known = dict(c.execute("SELECT fp, mtime_ns FROM dirs").fetchall())
    try:
        top = os.stat(index.dd.posts).st_mtime_ns
    except FileNotFoundError:
        top = 0
    row = c.execute("SELECT value FROM meta WHERE key='posts_mtime'").fetchone()
    authors = known.keys() if row is not None and row[0] == top else _author_dirs(index)
    changed = []
    for fp in authors | known.keys():
        try:
            mtime: int | None = os.stat(index.posts_prefix + fp).st_mtime_ns
        except OSError:
            mtime = None
        if mtime != known.get(fp):
            changed.append((fp, mtime))
    for fp, mtime in sorted(changed):
        if report.budget is not None and report.budget <= 0:
            report.unfinished = True
            break
        if mtime is None:
            report.removed += _forget_author(index, fp)
        else:
            _rescan(index, fp, mtime, report)
    if not report.unfinished and (row is None or row[0] != _settled(top)):
        with index.write() as w:
            w.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('posts_mtime', ?)",
                      (_settled(top),))
    return report


def _author_dirs(index: Index) -> set[str]:
    return _author_dirs_of(index.dd)


def _author_dirs_of(dd: DataDir) -> set[str]:
    try:
        entries = os.scandir(dd.posts)
    except FileNotFoundError:
        return set()
    with entries:
        return {e.name for e in entries if not is_temp_name(e.name)
                and names.FINGERPRINT_RE.fullmatch(e.name) and e.is_dir()}


def _forget_author(index: Index, fp: str) -> int:
    """Drop every row of an author whose directory is gone; returns posts dropped."""
    author_id = index.fp_id(fp)
    with index.write() as c:
        n = 0
        if author_id is not None:
            n = index.delete_rows(c, [r[0] for r in c.execute(
                "SELECT sha FROM posts WHERE author=?", (author_id,)).fetchall()])
        c.execute("DELETE FROM dirs WHERE fp=?", (fp,))
    return n


def _rescan(index: Index, fp: str, mtime: int, report: ReconcileReport) -> None:
    """Diff one author directory (listed after ``mtime`` was read) against its rows."""
    report.dirs_scanned += 1
    folder = index.dd.posts / fp
    try:
        with os.scandir(folder) as entries:
            on_disk = {e.name for e in entries if not is_temp_name(e.name)
                       and names.SHA1_RE.fullmatch(e.name)}
    except (FileNotFoundError, NotADirectoryError):  # gone (or replaced) since the stat
        report.removed += _forget_author(index, fp)
        return
    author_id = index.fp_id(fp)
    indexed = set() if author_id is None else {r[0].hex() for r in index.conn().execute(
        "SELECT sha FROM posts WHERE author=?", (author_id,))}
    new = sorted(on_disk - indexed)
    finished = report.budget is None or len(new) <= report.budget
    if not finished:
        new, report.unfinished = new[:report.budget], True
    for start in range(0, len(new), VERIFY_BATCH):
        _add_verified(index, folder, new[start:start + VERIFY_BATCH], report)
    gone = [bytes.fromhex(s) for s in indexed - on_disk if not (folder / s).exists()]
    with index.write() as c:
        report.removed += index.delete_rows(c, gone)
        if finished:
            c.execute("INSERT OR REPLACE INTO dirs(fp, mtime_ns) VALUES (?,?)",
                      (fp, _settled(mtime)))


def _add_verified(index: Index, folder: Path, sha1s: list[str],
                  report: ReconcileReport) -> None:
    """Verify files found on disk (as ingest would) and index the valid ones."""

    posts = []
    if report.budget is not None:
        report.budget -= len(sha1s)
    if report.pool is not None:
        chunk = max(1, len(sha1s) // (4 * (report.workers)))
        found = list(report.pool.map(_pool_verify, [str(folder / s) for s in sha1s],
                                     chunksize=chunk))
    else:
        found = [verify_file(index.dd, folder / sha1) for sha1 in sha1s]
    for sha1, post in zip(sha1s, found, strict=True):
        if post is None or post.sha1 != sha1 or post.author != folder.name:
            report.invalid += 1
        else:
            posts.append(post)
    report.added += index.add_many(posts)
    if report.progress is not None:
        report.progress(len(sha1s))


def _settled(mtime_ns: int) -> int:
    """``mtime_ns``, or 0 (= rescan next time) if it is too recent to trust."""
    return 0 if time.time_ns() - mtime_ns < RACY_NS else mtime_ns


# files found on disk -------------------------------------------------------------------

_file_verifier: Ingestor | None = None


def verify_file(dd: DataDir, path: Path) -> Post | None:
    """Load and fully verify a post file found on disk; None if it is not a valid post.

    The directory must be the author and the name the SHA-1. A post by an
    author blocked since is still valid here (listings filter blocked authors).
    No key is fetched: a reshare whose inner author's key is gone is invalid.
    Raises nothing: unreadable files are None too.
    """
    global _file_verifier
    author, name = path.parent.name, path.name
    if not names.FINGERPRINT_RE.fullmatch(author) or not names.SHA1_RE.fullmatch(name):
        return None
    if _file_verifier is None or _file_verifier.dd is not dd:
        _file_verifier = Ingestor(dd, index=None)
    verifier = _file_verifier
    try:
        with open(path, "rb") as f:
            raw = f.read(verifier.max_bytes + 1)
        return verifier.verify(raw, author=author, name=name, check_blocked=False)
    except (OSError, BadPost):
        return None
