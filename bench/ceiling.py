"""This machine's ceiling for what ingest does to a post: the same steps on two cores
with nothing shared and nothing made durable (``bench_ingest.py --ceiling``).

Two forked processes each take every other batch into a data directory and index of
their own, so they never wait for each other, for a lock or for the disk. Each post is
split, its P1 parsed, its signature checked (``crypto.verify``), its SHA-1 taken and
its :class:`~app.core.posts.codec.Post` made; its file is written unnamed
(``O_TMPFILE``, data then mtime); once a batch is through, each file is named with a
no-replace link and, with the index, the batch's rows go in
(``Index.add_many(flushed_later=True)``). Nothing is flushed: no ``syncfs``, no fsync,
the index's log not synced. Ingest's attribute rules, its blocked-author checks, its
reshares' inner signatures and every check of what a helper answered are left out.

So this is more than ingest could ever reach here: what the two cores do with this work
and nothing else. The ingest rows of ``bench_ingest.py`` are measured against the raw
one-core verify rate; this row, taken in the same rounds, says how much of that ratio
the work itself leaves (bench/README.md, "Issue 14, stop 26").
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import common

from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.posts.codec import make_post, parse_payload, split_post
from app.core.posts.index import Index

PROCESSES = 2


def _work(dd: DataDir, batches: list[list[bytes]], keys: dict[str, bytes],
          with_index: bool) -> None:
    """One process's share (see the module docstring); raises on any post that fails."""
    index = Index(dd) if with_index else None
    posts_dir = os.fspath(dd.posts)
    for batch in batches:
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
        for post, fd in zip(posts, fds, strict=True):
            os.link(f"/proc/self/fd/{fd}", f"{posts_dir}/{post.author}/{post.sha1}",
                    src_dir_fd=fd, follow_symlinks=True)
            os.close(fd)
        if index is not None:
            index.add_many(posts, flushed_later=True)


def ceiling_rate(root: Path, raws: list[bytes], people: list[common.Author], batch: int,
                 with_index: bool) -> float:
    """Posts/s of :data:`PROCESSES` forked processes doing ingest's steps on ``raws``
    (batches of ``batch``, every other one each) under ``root`` (a new directory), from
    the moment both are ready until both are done. Raises ``SystemExit`` if one fails."""
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
                _work(dd, batches[k::PROCESSES], keys, with_index)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for _ in pids:
        os.read(ready_r, 1)
    started = time.perf_counter()
    os.write(go_w, b"g" * len(pids))
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    elapsed = time.perf_counter() - started
    for fd in (ready_r, ready_w, go_r, go_w):
        os.close(fd)
    if failed:
        raise SystemExit(f"a ceiling process failed ({len(failed)} of {len(pids)})")
    return len(raws) / elapsed
