"""Two whole ingests on alternate batches of one feed, into one data directory and index
(``bench_ingest.py --pair``): what the node's own checks, index and bookkeeping reach
arranged as two whole processes instead of one process and two helpers.

Each of two forked processes takes every other batch and does all of a batch's work
itself, with no helper: :meth:`~app.core.posts.ingest.Ingestor.check_batch` with its
signatures checked in the process (``crypto.verify`` in order, as a batch under 64
posts is), the files written unnamed (``O_TMPFILE``, data then mtime), then ingest's
group commit as :mod:`ceiling` does it (a batch's ``syncfs`` on a thread, which then
names its files; meanwhile the next batch is checked and this batch's rows go in with
``Index.add_many(flushed_later=True, before_commit=...)``, their COMMIT waiting for the
names), then ``Ingestor._finish`` (the keys touched, a deletion record's targets). The
rows are committed in the batches' order: before inserting a batch's rows a process
waits, on a pipe, for the other to have committed the batch before it (each
position is given in the order a single ingest would give it). After the run the
index is checked: every post has a row, in the input's order.

Not the node's code, and not correct as an ingest: a batch is checked before the
batch before it is indexed, so a deletion or edit record in one batch does not act on
the next one's posts (the bench's posts have none), a missing author's key is not
looked up, and nothing reports a batch durable to a caller. It measures what the
arrangement could give, not a design (bench/README.md, "Issue 14, stop 31").
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import ceiling
import common

from app.core.base.datadir import DataDir
from app.core.base.fsio import syncfs
from app.core.posts import ingest
from app.core.posts.index import Index
from app.core.posts.ingestresults import Checked

PROCESSES = 2


def _work(root: Path, batches: list[list[bytes]], first: int, total: int, token_in: int,
          token_out: int, unused: Sequence[int]) -> None:
    """One process's share: batches ``first``, ``first + 2``, ... of ``total`` (see
    above)."""
    for fd in unused:  # the other's ends: a pipe's end is seen if the other one dies
        os.close(fd)
    ingest._PARALLEL_MIN = 1 << 30  # signatures checked here, in order: no helper
    dd = DataDir(root, {"verify_processes": 0})
    index = Index(dd)
    ingestor = ingest.Ingestor(dd, index=index)
    posts_dir = os.fspath(dd.posts)

    flushing: tuple[ceiling.Flush, Checked, int] | None = None
    for j in range(len(batches) + 1):
        checked = ingestor.check_batch(batches[j]) if j < len(batches) else None
        if checked is not None and checked.result.rejected:
            raise SystemExit(f"unexpected rejections: {checked.result.rejected[:3]}")
        if flushing is not None:
            flush, done, number = flushing
            if number > 0 and os.read(token_in, 1) != b"t":  # batch number - 1 committed
                raise SystemExit("the other ingest process ended")
            index.add_many(done.posts, flushed_later=True, before_commit=flush.finish)
            if number + 1 < total:  # the other commits the next batch
                os.write(token_out, b"t")
            ingestor._finish(done.session, done.posts, indexed=True, flushed_later=True)
        flushing = None
        if checked is not None:
            flush = ceiling.Flush(posts_dir, checked.posts,
                                  ceiling.write_unnamed(posts_dir, checked.posts))
            flush.start()
            flushing = (flush, checked, first + PROCESSES * j)
    syncfs(dd.posts)  # the last batch's names and rows


def pair_rate(root: Path, raws: list[bytes], people: list[common.Author],
              batch: int) -> ceiling.Ceiling:
    """A :class:`ceiling.Ceiling` of two whole ingests of ``raws`` (batches of ``batch``,
    every other one each) into a new data directory ``root`` (see the module docstring).
    Raises ``SystemExit`` if a process fails or the index does not hold every post, in
    order."""
    dd = DataDir(root, {})
    dd.initialise()
    common.write_pubs(dd.identities, people)
    for author in people:  # made before the clock starts, as ingest makes them once
        (dd.posts / author.fp).mkdir(parents=True, exist_ok=True)
    schema = Index(dd)
    schema.add_many([])  # the schema, too; its connection closed before the fork
    schema.close()
    batches = [raws[s:s + batch] for s in range(0, len(raws), batch)]
    tokens = [os.pipe() for _ in range(PROCESSES)]  # tokens[k]: read by process k
    works = []
    for k in range(PROCESSES):
        token_in, token_out = tokens[k][0], tokens[(k + 1) % PROCESSES][1]
        unused = [fd for pipe in tokens for fd in pipe if fd not in (token_in, token_out)]
        works.append(functools.partial(_work, root, batches[k::PROCESSES], k, len(batches),
                                       token_in, token_out, unused))
    result = ceiling.run_forked(works, len(raws), [fd for pipe in tokens for fd in pipe])
    _check_index(dd, raws)
    return result


def _check_index(dd: DataDir, raws: list[bytes]) -> None:
    """Raise ``SystemExit`` unless the index holds a row for each of ``raws``, in order."""
    want = [hashlib.sha1(raw).digest() for raw in raws]
    index = Index(dd)
    try:
        got = [bytes(sha) for (sha,) in index.conn().execute("SELECT sha FROM posts ORDER BY id")]
    finally:
        index.close()  # not left open in this process's pool for the rest of the bench
    if got != want:
        raise SystemExit(f"the index holds {len(got):,} rows, not the {len(want):,} posts "
                         "in the input's order")

