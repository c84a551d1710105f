"""Storing a batch of verified posts: one flush for the data, one for the names.

:meth:`app.core.posts.ingest.Ingestor.ingest_many` hands over the posts it accepted.
Most of them were written already, unnamed, by the helper that checked their
signature (:func:`app.core.posts.signatures.check_ahead`,
:mod:`app.core.base.verifyprocs`); the rest (a small batch, a helper that failed) are
written here with :class:`app.core.base.fsio.BatchWriter`. Then, in this order: the file
system is flushed once (``syncfs``: every file's data and mtime, whoever wrote it); each
file is named with a no-replace ``linkat`` (by its helper, or here); the names are
flushed (the folder's ``fsync``, or one ``syncfs`` for a batch touching several
folders), a folder where a name was found taken included: another writer made it and
may not have flushed it yet. Nothing has a name before its data is on disk; a crash at
any point leaves whole files only, and the caller reports a post stored only after
:func:`store` returns.

No ``stat`` per post: a post already stored is found by the no-replace link itself
(``EEXIST``), which is also what makes concurrent writers safe.

``then`` (the caller's, e.g. starting the next batch's checks,
:func:`app.core.posts.pipeline.ingest_batches`) runs once the helpers were asked
to name this batch's files and before their answers are read: a helper answers
requests in order, so it names this batch's files first, then checks the next batch
while this process flushes the names and indexes this one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from ..base.flush import syncfs_is_cheap
from ..base.fsio import BatchWriter, fsync_dir, make_durable_dir, syncfs
from ..base.verifyprocs import EXISTED, LINKED, Ticket, holding
from .codec import Post
from .signatures import Answers

log = logging.getLogger("diwan.ingest")
Held = dict[str, tuple[Answers, int]]  # SHA-1 -> (request, place in it) of the helper's file


def store(posts_dir: Path, posts: list[Post], held: Held,
          then: Callable[[], object] | None = None, *, dirty_per_file: int | None = None,
          rows_first: Callable[[], object] | None = None) -> set[str]:
    """Write ``posts`` under ``posts_dir`` (``posts/<FP>/<SHA1>``, mtime CREATED_TIME)
    unless stored already; return the SHA-1s written. ``held``: the posts whose file a
    helper holds. ``then`` is called once, if given, while this batch is being stored
    (see above; an ``Exception`` it raises is logged and ignored). Raises
    ``OSError`` if a file cannot be written or named; whatever was not named then stays
    invisible. ``rows_first`` is called right before a ``syncfs`` that flushes the names
    of every post (helpers named them all, in several folders): the caller's index rows,
    committed there without a flush of their own, are made durable by that same flush."""
    unique = list({p.sha1: p for p in reversed(posts)}.values())[::-1]
    own = [p for p in unique if p.sha1 not in held]
    helped = [p for p in unique if p.sha1 in held]
    if not helped:  # all written here: one syncfs, or an fsync each past dirty_per_file
        _call(then)
        each = dirty_per_file is not None and not syncfs_is_cheap(len(own), dirty_per_file)
        return _write_here(posts_dir, own, fsync_each=each)
    written = _write_here(posts_dir, own)  # its own flush covers the helpers' files too
    if not own:
        syncfs(posts_dir)
    linked, again = _link_helped(posts_dir, helped, held, then, None if own else rows_first)
    written |= linked
    if again:  # a helper died (its files went with it) or could not name them
        written |= _write_here(posts_dir, again)
    return written


def store_names_unflushed(posts_dir: Path, posts: list[Post], held: Held,
                          then: Callable[[], object] | None,
                          rows: Callable[[Callable[[], None]], object]) -> set[str]:
    """:func:`store` in a group commit (:func:`app.core.posts.pipeline.ingest_batches`),
    for a batch every post of which a helper holds; returns the SHA-1s written.

    1. One ``syncfs``, on a thread: this batch's data, and what the caller left unflushed
       before (the previous batch's names and index rows). As soon as it returns, that
       thread asks the helpers to name this batch's files: they name them while this
       process goes on (an answer waited for here cost ~7 ms a batch of 500, the names
       queued behind the next batch's checks). Meanwhile, here, ``then()`` runs (the
       next batch's checks are prepared; the helper requests it makes are held,
       :func:`app.core.base.verifyprocs.holding`, and sent once the names were asked
       for), then ``rows(finish)`` inserts the batch's index rows in a transaction.
    2. ``finish()``, which ``rows`` calls before its COMMIT, waits for the flush and the
       names (writing here, durably, any file a helper could not name): so no row is
       visible before its name, and nothing is named before its data is on disk. If
       ``rows`` returns without calling it (an index that failed: logged, repaired
       later), ``finish`` is called after (one that failed in ``rows`` raises its error
       again). If ``rows`` raises, its rows are not committed; files the helpers named
       by then stay, unreported, for a later ingest or the index's rescan of their
       folder (its mtime moved) to find, like those of a batch whose flush failed.
       The index's write lock is held from the rows to their COMMIT, so through the
       names too (other writers wait, up to ``index_busy_timeout``).

    The names and rows are *not* flushed: the caller flushes them (the next batch's
    step 1, or its own ``syncfs``) before it reports these posts stored. Raises
    ``OSError`` if the flush or a write fails (nothing of this batch is named then, or
    its rows are rolled back with ``finish``'s error).
    """
    failed: list[BaseException] = []
    asked: list[Sent] = []  # the names asked for, once the data is on disk

    def flush_then_name() -> None:
        try:
            syncfs(posts_dir)
            asked.append(_start_links(posts_dir, posts, held))
        except BaseException as exc:  # raised below, in the caller's thread
            failed.append(exc)
    flusher = threading.Thread(target=flush_then_name, name="diwan-flush")
    flusher.start()
    written: set[str] = set()
    finished: list[BaseException | None] = []  # what the first call raised, if anything
    later_sent: list[bool] = []

    def send_later() -> None:  # the next batch's files, after this batch's names
        if not later_sent:
            later_sent.append(True)
            later.send()

    def finish() -> None:  # once, the first time it is called; a failure raised again
        if finished:
            if finished[0] is not None:
                raise finished[0]
            return
        finished.append(None)
        try:
            flusher.join()
            if failed:
                raise failed[0]
            send_later()
            linked, again, _ = _finish_links(asked[0])
            written.update(linked)
            if again:  # a helper died (its files went with it) or could not name them
                written.update(_write_here(posts_dir, again))
        except BaseException as exc:
            finished[0] = exc
            raise
    try:
        with holding() as later:
            _call(then)
        if not flusher.is_alive() and not failed:  # names asked for already
            send_later()
        rows(finish)  # the rows go in while the data is flushed; their COMMIT waits
        finish()
    finally:
        flusher.join()  # never left running, whatever was raised
    return written


def _write_here(posts_dir: Path, posts: Iterable[Post], *, fsync_each: bool = False
                ) -> set[str]:
    writer = BatchWriter(posts_dir, fsync_each=fsync_each)
    folders: set[str] = set()
    try:
        for post in posts:
            folder = posts_dir / post.author
            if post.author not in folders:
                make_durable_dir(folder)  # a new author's folder: its entry flushed too
                folders.add(post.author)
            writer.add(folder / post.sha1, post.raw, mtime=post.created)
        return {p.name for p in writer.commit()}
    except BaseException:
        writer.abort()
        raise


def _link_helped(posts_dir: Path, posts: list[Post], held: Held,
                 then: Callable[[], object] | None,
                 rows_first: Callable[[], object] | None = None
                 ) -> tuple[set[str], list[Post]]:
    """Ask each helper to name its files (data already flushed), then flush the names;
    returns the SHA-1s named and the posts to write here: their helper is gone, or it
    could not name their file (no ``/proc/self/fd``, the folder gone meanwhile)."""
    sent = _start_links(posts_dir, posts, held)
    _call(then)
    linked, again, folders = _finish_links(sent)
    if len(folders) > 1:  # one flush for every folder's names, not one each as well
        if rows_first is not None and not again:
            rows_first()  # committed unflushed: the syncfs below flushes them too
        syncfs(posts_dir)
    else:
        for folder in folders:
            fsync_dir(posts_dir / folder)
    return linked, again


Sent = list[tuple[list[Post], Ticket | None]]  # each helper's posts, the answer to its links


def _start_links(posts_dir: Path, posts: list[Post], held: Held) -> Sent:
    """Ask every helper at once to name the files it holds for ``posts``."""
    by_ticket: dict[int, tuple[Ticket, list[Post]]] = {}
    for post in posts:
        ticket = held[post.sha1][0]
        if isinstance(ticket, Ticket):
            by_ticket.setdefault(id(ticket), (ticket, []))[1].append(post)
    base = os.fspath(posts_dir)  # strings: pathlib costs more per post than the link does
    sent: Sent = []
    for ticket, group in by_ticket.values():
        names = [(held[p.sha1][1], f"{base}/{p.author}/{p.sha1}") for p in group]
        sent.append((group, ticket.start_link(names)))
    return sent


def _finish_links(sent: Sent) -> tuple[set[str], list[Post], set[str]]:
    """The helpers' answers: the SHA-1s named, the posts to write here, and the folders
    whose names must be flushed (a name another writer made may not be flushed yet)."""
    linked: set[str] = set()
    again: list[Post] = []
    folders: set[str] = set()
    for group, answer in sent:
        codes = None if answer is None else answer.link_codes()
        if codes is None:
            again += group
            continue
        for post, code in zip(group, codes, strict=True):
            if code in (LINKED, EXISTED):
                folders.add(post.author)
            if code == LINKED:
                linked.add(post.sha1)
            elif code != EXISTED:  # the helper could not name it (its file is dropped):
                again.append(post)  # written here instead, or the error raised here
    return linked, again, folders


def _call(then: Callable[[], object] | None) -> None:
    """Run ``then``; an ``Exception`` it raises is logged (starting the next batch's
    checks ahead is only a head start: that batch checks itself when it comes)."""
    if then is None:
        return
    try:
        then()
    except Exception as exc:
        log.info("starting the next batch's checks ahead failed: %s", exc)
