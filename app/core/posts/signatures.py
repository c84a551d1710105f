"""A batch's post signatures, checked ahead of ingest on every core.

:meth:`app.core.posts.ingest.Ingestor.ingest_many` splits each post of a large batch
(rules 1-3 of the acceptance order), then sends the signature checks (rule 4) in chunks
to :func:`app.core.base.verifyprocs.pool` (``verify_processes`` helper processes) as soon
as each chunk is full, and goes on parsing and checking the posts whose answers are back
while the helpers check the rest. Only a head start: every check still happens in its
fixed order in ingest, which reads these answers at the signature step. With
``verify_processes`` = 0 the chunks go to a thread pool in this process instead
(PyNaCl releases the GIL while it verifies; ``bench/bench_ingest.py`` measures both).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..base import verifyprocs
from ..base.errors import BadPost
from .codec import CREATED, Parts, parse_payload, split_post

# Signatures per request: the first answers come back after 64 checks, and a batch of 500
# wakes a helper 16 times (8 checks, 8 links), not 32.
CHUNK = 64
Answers = Future[list[bool]] | verifyprocs.Ticket
# (the split post, its attributes if they parsed, its chunk's answers, its place in it)
Prepared = tuple[Parts, dict[str, Any] | None, Answers, int]
_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    """A process-wide thread pool for signature checks (``verify_processes`` = 0)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():  # a forked child makes its own
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=os.cpu_count() or 2,
                                                     thread_name_prefix="diwan-verify"))
        return _pool[1]


def check_ahead(raws: Sequence[bytes], author: str | None, max_bytes: int,
                key_of: Callable[[str], bytes | None], processes: int,
                folder_of: Callable[[str], str | None] | None = None,
                positions: range | None = None) -> dict[int, Prepared]:
    """Start checking the signatures of ``raws`` (post files; only those at ``positions``
    when given); return, by position, each post whose check was started.

    Skipped (ingest checks them in order and rejects them itself): posts that do not
    split (``max_bytes`` is the size cap), posts not by ``author`` (64 hex, when given)
    and posts whose author's key ``key_of(fp)`` does not have. ``processes``: helper
    processes to use (0: threads here). With ``folder_of(fp)`` (an existing folder, or
    None: do not write), a helper also writes the file of each post whose signature
    verifies and whose P1 parsed, unnamed, to be named by
    :mod:`app.core.posts.storebatch` (see :mod:`app.core.base.verifyprocs`). P1 is
    parsed here, once: ingest reuses the attributes. Raises nothing for a bad post.
    """
    procs = verifyprocs.pool(processes)
    out: dict[int, Prepared] = {}
    try:
        _check(raws, author, max_bytes, key_of, procs, folder_of, out,
               range(len(raws)) if positions is None else positions)
    except BaseException:  # a folder that cannot be made: nothing sent stays held
        release(tickets(out.values()))
        raise
    return out


def _check(raws: Sequence[bytes], author: str | None, max_bytes: int,
           key_of: Callable[[str], bytes | None], procs: verifyprocs.VerifyPool | None,
           folder_of: Callable[[str], str | None] | None, out: dict[int, Prepared],
           positions: range) -> None:
    chunk: list[tuple[int, Parts, bytes, dict[str, Any] | None]] = []

    def send() -> None:  # as soon as a chunk is full: the helpers start at once
        jobs = [(k, p.p1, p.signature) for _, p, k, _ in chunk]
        answers: Answers
        if procs is None:
            answers = _thread_pool().submit(verifyprocs.verify_jobs, jobs)
        elif folder_of is None:
            answers = procs.submit(jobs)
        else:  # a post that did not parse, or has no folder, is checked, not written
            writes = []
            for _, p, _, a in chunk:
                folder = folder_of(p.author)
                writes.append((folder or "", p.raw,
                               a[CREATED] if a is not None and folder is not None else -1))
            answers = procs.submit(jobs, writes)
        for offset, (i, parts, _, attrs) in enumerate(chunk):
            out[i] = (parts, attrs, answers, offset)
        chunk.clear()

    for i in positions:
        try:
            parts = split_post(bytes(raws[i]), max_bytes=max_bytes)
        except BadPost:
            continue
        if author not in (None, parts.author):
            continue  # rejected as wrong_author in order, no signature needed
        key = key_of(parts.author)
        if key is None:
            continue
        try:
            attrs: dict[str, Any] | None = parse_payload(parts.payload)
        except BadPost:
            attrs = None  # ingest parses it again, after the signature, and rejects it
        chunk.append((i, parts, key, attrs))
        if len(chunk) == CHUNK:
            send()
    if chunk:
        send()


def answer(prepared: Prepared) -> bool:
    """Whether the signature of a post from :func:`check_ahead` verified (waits for it)."""
    answers, offset = prepared[2], prepared[3]
    if isinstance(answers, verifyprocs.Ticket):
        return answers.wait()[offset] != verifyprocs.BAD
    return answers.result()[offset]


def written(answers: Answers, offset: int) -> bool:
    """Whether a helper holds the (unnamed) file of the post at ``offset`` in the request
    ``answers`` (a post from :func:`check_ahead`: its ``Prepared[2:4]``); waits for the
    helper's answer to writing it."""
    return (isinstance(answers, verifyprocs.Ticket) and not answers.released
            and answers.file_codes()[offset] == verifyprocs.WRITTEN)


def tickets(prepared: Iterable[Prepared]) -> list[Answers]:
    """The requests these checks went out in, each once (for :func:`release`)."""
    return list({id(p[2]): p[2] for p in prepared}.values())


def release(sent: Iterable[Answers]) -> None:
    """Drop every file helpers still hold for these requests (:func:`tickets`; none
    becomes visible)."""
    for ticket in sent:
        if isinstance(ticket, verifyprocs.Ticket):
            ticket.release()


@dataclass
class Ahead:
    """A batch whose checks started ahead (:meth:`app.core.posts.ingest.Ingestor.check_ahead`),
    for the :meth:`~app.core.posts.ingest.Ingestor.ingest_many` of the same ``raws`` (the
    same list object) and ``author``: ``prepared`` as :func:`check_ahead` returns it, for
    the posts before position ``upto`` (the rest are checked when the batch is ingested)."""

    raws: Sequence[bytes]
    author: str | None
    prepared: dict[int, Prepared] = field(default_factory=dict)
    upto: int = 0

    def take(self) -> dict[int, Prepared]:
        """The checks, handed over (this no longer holds them)."""
        prepared, self.prepared = self.prepared, {}
        return prepared

    def matches(self, raws: Sequence[bytes], author: str | None) -> bool:
        """Whether these checks are those of ``raws`` by ``author``."""
        return self.raws is raws and self.author == author

    def close(self) -> None:
        """Drop what the helpers hold for this batch (a batch not ingested after all)."""
        release(tickets(self.prepared.values()))
        self.prepared = {}


def taken(ahead: Ahead | None, raws: Sequence[bytes],
          author: str | None) -> tuple[dict[int, Prepared], int]:
    """The checks ``ahead`` started and the position they reach, if they are those of
    ``raws`` by ``author``; else none (and ``ahead``'s are dropped)."""
    if ahead is not None and ahead.matches(raws, author):
        return ahead.take(), ahead.upto
    if ahead is not None:
        ahead.close()
    return {}, 0
