"""This machine's ceiling for what ingest does to a post: the same steps on two cores
with nothing shared (``bench_ingest.py --ceiling``).

Two forked processes each take every other batch into a data directory and index of
their own, so they never wait for each other or for a lock. Each post is split, its P1
parsed, its signature checked (``crypto.verify``), its SHA-1 taken and its
:class:`~app.core.posts.codec.Post` made; its file is written unnamed (``O_TMPFILE``,
data then mtime); once a batch is through, each file is named with a no-replace link
and, with the index, the batch's rows go in (``Index.add_many(flushed_later=True)``).

- Not durable (the default): nothing is flushed, no ``syncfs``, no fsync, the index's
  log not synced.
- Durable (``durable=True``): what ingest's group commit does to make a batch durable,
  one ``syncfs`` a batch between its files and their names (it also flushes the
  previous batch's names and rows), on a thread while the next batch is prepared, and
  one at the end.

Ingest's attribute rules, its blocked-author checks, its reshares' inner signatures and
every check of what a helper answered are left out. So each row is more than ingest
could reach here: what the two cores do with this work (and, durable, its flushes) and
nothing else; everything left out only raises it. The ingest rows of
``bench_ingest.py`` are measured against the lower of one-core verify and the disk;
these rows, taken in the same rounds, say how much of that ratio the work itself leaves
(bench/README.md, "Issue 14, stop 26" and "stop 30").
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

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

    def prepare(batch: list[bytes]) -> tuple[list[Post], list[int]]:
        posts, fds = [], []
        for raw in batch:
            parts = split_post(raw, max_bytes=1 << 20)
            attrs = parse_payload(parts.payload)
            if not crypto.verify(keys[parts.author], crypto.CTX_POST, parts.p1,
                                 parts.signature):
                raise SystemExit("a bench post did not verify")
            post = make_post(parts, attrs, hashlib.sha1(raw).hexdigest())
            fd = os.open(f"{posts_dir}/{post.author}", os.O_WRONLY | os.O_TMPFILE, 0o644)
            os.write(fd, raw)
            os.utime(fd, (post.created, post.created))
            posts.append(post)
            fds.append(fd)
        return posts, fds

    def store(posts: list[Post], fds: list[int]) -> None:
        for post, fd in zip(posts, fds, strict=True):
            os.link(f"/proc/self/fd/{fd}", f"{posts_dir}/{post.author}/{post.sha1}",
                    src_dir_fd=fd, follow_symlinks=True)
            os.close(fd)
        if index is not None:
            index.add_many(posts, flushed_later=True)

    if not durable:
        for batch in batches:
            store(*prepare(batch))
        return
    # As ingest's group commit: a batch's flush (its data, the last batch's names and
    # rows) runs on a thread while the next batch is prepared; its names and rows follow.
    flushing: tuple[threading.Thread, list[Post], list[int]] | None = None
    for k in range(len(batches) + 1):
        ready = prepare(batches[k]) if k < len(batches) else None
        if flushing is not None:
            flushing[0].join()
            store(flushing[1], flushing[2])
        if ready is not None:
            flusher = threading.Thread(target=syncfs, args=(dd.posts,))
            flusher.start()
            flushing = (flusher, *ready)
    syncfs(dd.posts)  # the last batch's names and rows


def ceiling_rate(root: Path, raws: list[bytes], people: list[common.Author], batch: int,
                 with_index: bool, durable: bool = False) -> tuple[float, float]:
    """(posts/s, busy share of every CPU) of :data:`PROCESSES` forked processes doing
    ingest's steps on ``raws`` (batches of ``batch``, every other one each) under ``root``
    (a new directory), from the moment both are ready until both are done; ``durable``:
    with one ``syncfs`` a batch (see the module docstring). The busy share is the whole
    machine's over that time (``/proc/stat``: neither idle nor waiting for I/O, of the
    time not stolen by the hypervisor): near 1, the work is bound by the CPUs, not by
    the disk, and posts/s over it is what the work could reach with every CPU busy.
    Raises ``SystemExit`` if one fails."""
    keys = {a.fp: a.public_key for a in people}
    batches = [raws[s:s + batch] for s in range(0, len(raws), batch)]
    dirs = []
    for k in range(PROCESSES):
        dd = DataDir(root / f"part{k}", {})
        dd.initialise()
        for fp in keys:
            (dd.posts / fp).mkdir(parents=True, exist_ok=True)
        if with_index:
            Index(dd).add_many([])  # the schema made before the clock starts
        dirs.append(dd)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pids = []
    for k, dd in enumerate(dirs):
        pid = os.fork()
        if pid == 0:  # the child: ready, wait for go, work, exit with 0 or 1
            code = 1
            try:
                os.write(ready_w, b"r")
                os.read(go_r, 1)
                _work(dd, batches[k::PROCESSES], keys, with_index, durable)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for _ in pids:
        os.read(ready_r, 1)
    started, before = time.perf_counter(), common.cpu_jiffies()
    os.write(go_w, b"g" * len(pids))
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    elapsed = time.perf_counter() - started
    spent = [b - a for a, b in zip(before, common.cpu_jiffies(), strict=True)]
    for fd in (ready_r, ready_w, go_r, go_w):
        os.close(fd)
    if failed:
        raise SystemExit(f"a ceiling process failed ({len(failed)} of {len(pids)})")
    available = max(1, sum(spent) - spent[7])  # the hypervisor's steal was never ours
    return len(raws) / elapsed, 1 - (spent[3] + spent[4]) / available
