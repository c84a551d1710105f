"""A ceiling for what ingest does to a post: the same steps on two cores, each process
with its own data directory and index (``bench_ingest.py --ceiling``).

Two forked processes each take every other batch into a data directory and index of
their own, so they never wait for each other or for a lock. Each post is split, its P1
parsed, its signature checked (``crypto.verify``), its SHA-1 taken and its
:class:`~app.core.posts.codec.Post` made; its file is written unnamed (``O_TMPFILE``,
data then mtime); once a batch is through, each file is named with a no-replace link
and, with the index, the batch's rows go in (``Index.add_many(flushed_later=True)``).

- Not durable (the default): nothing is flushed, no ``syncfs``, no fsync, the index's
  log not synced.
- Durable (``durable=True``): ingest's group commit (app/core/posts/pipeline.py). A
  batch's ``syncfs`` (its data, and the previous batch's names and rows) runs on a
  thread, which then names the batch's files; meanwhile the next batch is checked and
  this batch's rows are inserted, their COMMIT waiting for the names; then the next
  batch's files are written (never under a flush, as ingest holds them back) and its
  flush starts; one ``syncfs`` at the end. A ``syncfs`` flushes the whole file system,
  so each process's flush also writes what the other wrote. Unlike ingest, the names
  are made by a thread of the same process (ingest's helpers are other processes).

Ingest's attribute rules, its blocked-author checks, its reshares' inner signatures, its
pipes to the helper processes and every check of what a helper answered are left out.
So these rows measure this work alone, arranged as ingest arranges it but on two whole
processes instead of one process and two helpers; they are not a bound on what another
arrangement could reach. The ingest rows of ``bench_ingest.py`` are measured against the
lower of one-core verify and the disk; these rows, taken in the same rounds, say what
this work reaches arranged this way (bench/README.md, "Issue 14, stop 26" and "stop
30").
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import resource
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn

import common

from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.base.fsio import syncfs
from app.core.posts.codec import Post, make_post, parse_payload, split_post
from app.core.posts.index import Index

PROCESSES = 2


def _work(dd: DataDir, batches: list[list[bytes]], keys: dict[str, bytes],
          with_index: bool, durable: bool) -> None:
    """One process's share (see the module docstring); raises on any post that fails."""
    index = Index(dd) if with_index else None
    posts_dir = os.fspath(dd.posts)

    def check(batch: Sequence[bytes]) -> list[Post]:
        checked = []
        for raw in batch:
            parts = split_post(raw, max_bytes=1 << 20)
            attrs = parse_payload(parts.payload)
            if not crypto.verify(keys[parts.author], crypto.CTX_POST, parts.p1,
                                 parts.signature):
                raise SystemExit("a bench post did not verify")
            checked.append(make_post(parts, attrs, hashlib.sha1(raw).hexdigest()))
        return checked

    if not durable:
        for batch in batches:
            posts = check(batch)
            link_names(posts_dir, posts, write_unnamed(posts_dir, posts))
            if index is not None:
                index.add_many(posts, flushed_later=True)
        return
    # As ingest's group commit (app/core/posts/pipeline.py): a batch's flush (its data, the
    # last batch's names and rows) runs on a thread, which then names the batch's files;
    # meanwhile the next batch is checked, then this batch's rows are inserted, their
    # COMMIT waiting for the names; only then are the next batch's files written (never
    # under a flush: ingest holds them back the same way) and its flush started.
    flushing: Flush | None = None
    for k in range(len(batches) + 1):
        ready = check(batches[k]) if k < len(batches) else None
        if flushing is not None:
            if index is not None:
                index.add_many(flushing.posts, flushed_later=True, before_commit=flushing.finish)
            else:
                flushing.finish()
        if ready is not None:
            flushing = Flush(posts_dir, ready, write_unnamed(posts_dir, ready))
            flushing.start()
    syncfs(dd.posts)  # the last batch's names and rows


def write_unnamed(posts_dir: str, posts: list[Post]) -> list[int]:
    """Write each post's file as an unnamed inode in its author's folder under
    ``posts_dir`` (``O_TMPFILE``, data, then mtime CREATED_TIME); their descriptors."""
    fds = []
    for post in posts:
        fd = os.open(f"{posts_dir}/{post.author}", os.O_WRONLY | os.O_TMPFILE, 0o644)
        os.write(fd, post.raw)
        os.utime(fd, (post.created, post.created))
        fds.append(fd)
    return fds


def link_names(posts_dir: str, posts: list[Post], fds: list[int]) -> None:
    """Name each unnamed file of :func:`write_unnamed` ``<FP>/<SHA1>`` (never replacing
    a name: ``FileExistsError``) and close it."""
    for post, fd in zip(posts, fds, strict=True):
        os.link(f"/proc/self/fd/{fd}", f"{posts_dir}/{post.author}/{post.sha1}",
                src_dir_fd=fd, follow_symlinks=True)
        os.close(fd)


class Flush(threading.Thread):
    """A batch's ``syncfs``, then its files' names (:func:`link_names`); :meth:`finish`
    waits for both and raises what either raised."""

    def __init__(self, posts_dir: str, posts: list[Post], fds: list[int]) -> None:
        super().__init__(name="ceiling-flush")
        self.posts_dir, self.posts, self.fds = posts_dir, posts, fds
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            syncfs(Path(self.posts_dir))
            link_names(self.posts_dir, self.posts, self.fds)
        except BaseException as exc:  # noqa: BLE001 - raised again by finish()
            self.failed = exc

    def finish(self) -> None:
        self.join()
        if self.failed is not None:
            raise self.failed


class Ceiling(NamedTuple):
    """One ceiling run: ``rate`` posts/s; ``busy`` the whole machine's busy share of its
    CPUs over the run (``/proc/stat``: neither idle nor waiting for I/O, of the time not
    stolen by the hypervisor); ``cpu_us`` the machine's busy CPU time a post (µs)."""

    rate: float
    busy: float
    cpu_us: float


def ceiling_rate(root: Path, raws: list[bytes], people: list[common.Author], batch: int,
                 with_index: bool, durable: bool = False) -> Ceiling:
    """A :class:`Ceiling`: :data:`PROCESSES` forked processes doing ingest's steps on
    ``raws`` (batches of ``batch``, every other one each) under ``root`` (a new
    directory), timed from the moment both are ready until both are done, after an
    untimed ``sync`` (earlier measures' writes are not flushed in this one's time);
    ``durable``: made durable as ingest's group commit (see the module docstring). Raises
    ``SystemExit`` if one fails (its traceback printed)."""
    keys = {a.fp: a.public_key for a in people}
    batches = [raws[s:s + batch] for s in range(0, len(raws), batch)]
    dirs = []
    for k in range(PROCESSES):
        dd = DataDir(root / f"part{k}", {})
        dd.initialise()
        for fp in keys:
            (dd.posts / fp).mkdir(parents=True, exist_ok=True)
        if with_index:
            schema = Index(dd)
            schema.add_many([])  # the schema made before the clock starts
            schema.close()  # no connection carried across the fork
        dirs.append(dd)
    return run_forked([functools.partial(_work, dd, batches[k::PROCESSES], keys, with_index,
                                         durable) for k, dd in enumerate(dirs)], len(raws))


def run_forked(works: Sequence[Callable[[], None]], posts: int,
               inherited: Sequence[int] = ()) -> Ceiling:
    """A :class:`Ceiling` of ``works`` run at once, each in a forked process, timed from
    the moment all are ready until all are done, after an untimed ``sync`` (earlier
    measures' writes are not flushed in this one's time); ``posts`` is how many posts
    they handle in all. ``inherited``: descriptors the children use, closed here once
    they are forked (so a child waiting on a pipe sees its end if the other dies).
    Raises ``SystemExit`` if one fails (its traceback printed)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pids: list[int] = []
    unclosed = list(inherited)
    try:
        for work in works:
            pid = os.fork()
            if pid == 0:
                _child(ready_r, ready_w, go_r, go_w, work)
            pids.append(pid)
        while unclosed:
            os.close(unclosed.pop())
        os.close(ready_w)
        os.close(go_r)
        ready_w = go_r = -1
        ready = b""
        while len(ready) < len(pids):  # the end of the pipe: one died before it was ready
            if not (got := os.read(ready_r, len(pids) - len(ready))):
                raise SystemExit("a forked bench process failed before it was ready")
            ready += got
        os.sync()  # not timed: earlier measures' writes are committed now, not in this one
        started, before = time.perf_counter(), common.cpu_jiffies()
        os.write(go_w, b"g" * len(pids))
        failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
        elapsed = time.perf_counter() - started
        busy, available = common.busy_ticks(before, common.cpu_jiffies())
        pids = []
    finally:  # also after a failed fork or ^C: the children see the end of "go" and exit
        for fd in (ready_r, ready_w, go_r, go_w, *unclosed):
            if fd >= 0:
                os.close(fd)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    if failed:
        raise SystemExit(f"a forked bench process failed ({len(failed)} of {len(works)})")
    return Ceiling(posts / elapsed, busy / available,
                   busy / os.sysconf("SC_CLK_TCK") / posts * 1e6)


def _child(ready_r: int, ready_w: int, go_r: int, go_w: int, work: Callable[[], None]
           ) -> NoReturn:
    """A forked child: say ready, wait for go (its end: the parent gave up), work, exit
    with 0 or 1 (its traceback printed)."""
    code = 1
    try:
        os.close(ready_r)
        os.close(go_w)
        with contextlib.suppress(OSError, ValueError):  # a batch's files are open at once
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft != resource.RLIM_INFINITY and hard != soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        os.write(ready_w, b"r")
        os.close(ready_w)  # once every child is ready or dead, the parent reads the end
        if os.read(go_r, 1) == b"g":
            work()
            code = 0
    except BaseException:  # noqa: BLE001 - the child ends here either way
        traceback.print_exc()
    finally:
        os._exit(code)
