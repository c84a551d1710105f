"""Helper processes that check post signatures and write the files of those that verify.

Ingest (:mod:`app.core.posts.ingest`) hands a batch's Ed25519 checks of
``CTX_POST + P1`` to :func:`pool`: ``verify_processes`` helper processes, each a fresh
interpreter that imports only :mod:`.crypto` and this module (not Flask, not the app).
With each check it may send the post's file: a helper whose check passes writes it as
an unnamed ``O_TMPFILE`` inode in the author's folder (data and mtime) and holds it.
Ingest meanwhile parses and checks the posts whose answers are back; then it flushes the
file system once (``syncfs``) and asks each helper to name the files of the posts it
accepted (``linkat``, never replacing a file) and to drop the rest; then it flushes the
names. So the signature checks and the file creation run on every core, beside ingest's
own work, with the same guarantee as :class:`.fsio.BatchWriter`: nothing gets a name
before its data is on disk, and a crash anywhere leaves no partial file (an unnamed
inode just goes away with its process). Processes, not threads: PyNaCl releases the GIL
inside ``crypto_sign_open``, but every call takes it back, and a thread waiting for it
while the ingesting thread parses JSON waits out a switch interval (5 ms);
``bench/bench_ingest.py`` measures both (``bench/README.md``).

Protocol on the helper's stdin/stdout (pipes, nothing else), little-endian: a request
is a kind byte (``V`` check, ``W`` check and write, ``P`` check and keep the files to
write later, ``F`` write the kept files of a ticket, ``L`` link), an 8-byte ticket
number and a 4-byte body length, then the body: per ``V`` item a 32-byte key, the
64-byte signature, a 4-byte length and P1; a ``W`` or ``P`` item adds the file's length,
its mtime (8 bytes; -1: do not write), the folder's length, then the folder and the file
(P1 is its start); an ``F`` body is empty; an ``L`` item is a job number and a
destination path (every file of the ticket not named, written or kept, is dropped). The
answer is one byte per item (:data:`BAD`/:data:`WRITTEN`/:data:`VERIFIED`, ``P``
answering :data:`VERIFIED` for a file kept; or :data:`LINKED`/:data:`EXISTED`/
:data:`FAILED`). ``P`` and ``F`` serve ingest's group commit (:func:`holding`): the
helpers check the next batch while this batch's data is flushed, and write its files
only after they have named this batch's. A helper exits at end of input, so it
outlives its parent only until the parent's end of the pipe closes. The pool reads owed
answers before sending more than half a helper's stdout pipe's worth of items, so a
helper never blocks writing answers while the pool blocks writing requests. Anything going
wrong with a helper (it died, a pipe broke) makes the pool check in the calling process
and the caller write the files itself: never a wrong answer, only a slower one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from .verifyhelper import (
    _LITEM,
    _PIPE_BYTES,
    BAD,
    EXISTED,
    FAILED,
    LINKED,
    VERIFIED,
    WRITTEN,
    Job,
    Write,
    _frame,
    _read_exact,
    encode,
    verify_jobs,
)

__all__ = ["BAD", "EXISTED", "FAILED", "LINKED", "VERIFIED", "WRITTEN", "Job", "Later",
           "Ticket", "VerifyPool", "Write", "close_pools", "encode", "holding", "pool",
           "verify_jobs"]

_F_SETPIPE_SZ = 1031
_F_GETPIPE_SZ = 1032
_MIN_PIPE_BYTES = 4096  # the smallest pipe Linux makes (one page)
_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the ``app`` package
# The helper's start: stand-in packages, so importing its module does not run
# app/__init__.py (Flask); then serve.
_BOOT = """import os, sys, types
root = sys.argv[1]
for name in ("app", "app.core", "app.core.base"):
    m = types.ModuleType(name)
    m.__path__ = [os.path.join(root, *name.split("."))]
    sys.modules[name] = m
from app.core.base.verifyhelper import serve
serve()
"""


class Ticket:
    """The answers to one request to a helper, in the order of its items.

    For checks: :data:`BAD`, :data:`WRITTEN` or :data:`VERIFIED` per job (verified here,
    never written, if the helper failed); for links, :data:`LINKED`, :data:`EXISTED` or
    :data:`FAILED` per name.
    """

    def __init__(self, pool: VerifyPool | None, jobs: Sequence[Job], count: int,
                 ident: int = 0) -> None:
        self._pool, self.jobs, self.count, self.ident = pool, jobs, count, ident
        self.codes: list[int] | None = None
        self.files: Ticket | None = None  # the answer to writing its files later (holding)
        self.released = pool is None
        if pool is None:
            self.codes = [VERIFIED if ok else BAD for ok in verify_jobs(jobs)]

    def wait(self) -> list[int]:
        """The answer codes (waits for them)."""
        pool = self._pool  # read once: a helper dropped on another thread sets it to None
        if self.codes is None and pool is not None:
            pool.collect(self)
        if self.codes is None:  # the helper is gone: checked here, nothing written
            self._pool, self.released = None, True
            self.codes = [VERIFIED if ok else BAD for ok in verify_jobs(self.jobs)]
        return self.codes

    def file_codes(self) -> list[int]:
        """:meth:`wait`, except for a check whose files were written later
        (:func:`holding`): the answers of that writing (:data:`WRITTEN` for a file
        written; none written if its helper is gone)."""
        codes = self.wait()
        if self.files is not None:
            return self.files.link_codes() or [c if c == BAD else VERIFIED for c in codes]
        return codes

    def result(self) -> list[bool]:
        """One bool per job: its signature verified."""
        return [code != BAD for code in self.wait()]

    def link(self, names: Sequence[tuple[int, str]]) -> list[int] | None:
        """Name the files the helper wrote for jobs ``(job number, destination path)``,
        never replacing a file, and drop the others; the codes, or None if the helper is
        gone (its files vanished with it: write them again). Call once, after the data
        was flushed (``syncfs``)."""
        answer = self.start_link(names)
        return None if answer is None else answer.link_codes()

    def start_link(self, names: Sequence[tuple[int, str]]) -> Ticket | None:
        """:meth:`link` without waiting: send the names and return the ticket of the answer
        (its :meth:`link_codes`), so several helpers link at once; None if the helper is
        gone."""
        pool = self._pool  # read once (see wait)
        if self.released or pool is None:
            return None
        self.released = True
        return pool.start_link(self, names)

    def link_codes(self) -> list[int] | None:
        """For a ticket :meth:`start_link` returned: the link's codes (waits for them);
        None if the helper died meanwhile (the files went with it)."""
        pool = self._pool  # read once (see wait)
        if self.codes is None and pool is not None:
            pool.collect(self)
        return self.codes

    def release(self) -> None:
        """Drop every file the helper wrote for this ticket (nothing becomes visible).
        Does not wait: the helper drops them when it reads the request, after those sent
        before it (the next batch's checks may already be queued behind this one)."""
        if not self.released:
            self.start_link([])


class Later:
    """The checks sent inside :func:`holding` whose files are still to be written
    (:meth:`send` asks for them)."""

    def __init__(self) -> None:
        self.pool: VerifyPool | None = None
        self.tickets: list[Ticket] = []

    def send(self) -> None:
        """Ask the helpers to write the files of these checks' posts that verified
        (once; nothing if there are none)."""
        if self.pool is not None and self.tickets:
            self.pool.write_later(self)


_holding = threading.local()


@contextlib.contextmanager
def holding() -> Iterator[Later]:
    """Within this block, a request of :meth:`VerifyPool.submit` in this thread that
    writes files is sent as a check only: the helper checks the signatures at once and
    keeps the files of the posts that verify in memory, unwritten, until the
    :class:`Later` yielded is :meth:`~Later.send`-t (never sent: the ticket's posts have
    no file, and ingest writes them itself). For ingest's group commit
    (:func:`app.core.posts.storebatch.store_names_unflushed`): the helpers check the next
    batch while this batch's data is flushed, without writing new data under the flush,
    and write its files once they have named this batch's."""
    later = Later()
    outer = getattr(_holding, "later", None)
    _holding.later = later
    try:
        yield later
    finally:
        _holding.later = outer


class _Helper:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, os.fspath(_ROOT)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True, bufsize=0)
        if self.proc.stdin is None or self.proc.stdout is None:  # pragma: no cover
            raise OSError("no pipes to the helper")
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.wfd, _F_SETPIPE_SZ, _PIPE_BYTES)
        # A helper blocks writing answers once its stdout pipe is full, and then reads no
        # more requests: at most half the pipe's bytes (one per item) may be owed.
        try:
            answers = fcntl.fcntl(self.rfd, _F_GETPIPE_SZ)
        except OSError:
            answers = _MIN_PIPE_BYTES
        self.room = max(1, answers // 2)
        self.pending: deque[Ticket] = deque()
        self.queued = 0  # items sent and not answered yet

    def stop(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class VerifyPool:
    """``processes`` helpers checking post signatures and writing files (thread-safe).

    Raises ``OSError`` if a helper cannot be started.
    """

    def __init__(self, processes: int) -> None:
        self._lock = threading.Lock()
        self._helpers = [_Helper() for _ in range(processes)]
        self._next = 0
        self._owner: dict[int, _Helper] = {}  # ticket -> the helper holding its files

    def submit(self, jobs: Sequence[Job], writes: Sequence[Write] | None = None) -> Ticket:
        """Send ``jobs`` to the least busy helper; with ``writes`` (one per job) it also
        writes each verified post's file as an unnamed inode, held until
        :meth:`Ticket.link`. Never raises: a failed helper means checking here."""
        with self._lock:
            if not self._helpers:
                return Ticket(None, jobs, len(jobs))
            self._next += 1
            ticket = Ticket(self, jobs, len(jobs), self._next)
            later: Later | None = getattr(_holding, "later", None)
            if writes is not None and later is not None and later.pool in (None, self):
                later.pool = self
                frame = encode(ticket.ident, jobs, writes, kind=b"P")
                if not self._deliver(ticket, frame, writes):
                    return Ticket(None, jobs, len(jobs))
                later.tickets.append(ticket)
                return ticket
            if not self._deliver(ticket, encode(ticket.ident, jobs, writes), writes):
                return Ticket(None, jobs, len(jobs))
            return ticket

    def _deliver(self, ticket: Ticket, frame: bytes, writes: object) -> bool:
        """Send ``ticket``'s ``frame`` to the least busy helper; False if it failed (the
        helper is dropped). Called with the lock held."""
        if not self._helpers:
            return False
        helper = min(self._helpers, key=lambda h: h.queued)
        if not self._send(helper, frame, ticket):
            return False
        if writes is not None:
            self._owner[ticket.ident] = helper
        return True

    def write_later(self, later: Later) -> None:
        """Ask each helper holding unwritten files of ``later``'s checks to write them
        (see :func:`holding`); each ticket's :meth:`Ticket.file_codes` then reads the
        answers. A helper gone meanwhile just leaves its tickets' posts without files."""
        with self._lock:
            for ticket in later.tickets:
                helper = self._owner.get(ticket.ident)
                if helper is None or helper not in self._helpers or ticket.released:
                    continue
                answer = Ticket(self, [], ticket.count, ticket.ident)
                if self._send(helper, _frame(b"F", ticket.ident, []), answer):
                    ticket.files = answer  # else the helper was dropped: no files
            later.tickets.clear()

    def _send(self, helper: _Helper, frame: bytes, ticket: Ticket) -> bool:
        """Write ``frame`` to ``helper`` after reading enough owed answers that the helper can
        answer it without filling its stdout pipe (else both would wait on each other for
        ever); False, the helper dropped, if a pipe failed. Called with the lock held."""
        try:
            while helper.pending and helper.queued + ticket.count > helper.room:
                self._read_head(helper)
            view = memoryview(frame)
            while view:
                view = view[os.write(helper.wfd, view):]
        except OSError:
            self._drop(helper)
            return False
        helper.pending.append(ticket)
        helper.queued += ticket.count
        return True

    def start_link(self, ticket: Ticket, names: Sequence[tuple[int, str]]) -> Ticket | None:
        """See :meth:`Ticket.start_link`."""
        parts: list[bytes] = []
        for n, dst in names:
            name = os.fsencode(dst)
            parts += (_LITEM.pack(n, len(name)), name)
        with self._lock:
            helper = self._owner.pop(ticket.ident, None)
            if helper is None or helper not in self._helpers:
                return None
            answer = Ticket(self, [], len(names), ticket.ident)
            if not self._send(helper, _frame(b"L", ticket.ident, parts), answer):
                return None
        return answer

    def collect(self, ticket: Ticket) -> None:
        """Read answers until ``ticket`` has its own (earlier tickets get theirs on the way)."""
        with self._lock:
            helper = next((h for h in self._helpers if ticket in h.pending), None)
            while helper is not None and ticket.codes is None:
                try:
                    self._read_head(helper)
                except OSError:
                    self._drop(helper)  # its tickets are checked here instead
                    return

    @staticmethod
    def _read_head(helper: _Helper) -> None:
        """Read the answers of ``helper``'s oldest pending ticket into it (``OSError`` if
        the pipe failed or closed). Called with the lock held."""
        head = helper.pending[0]
        got = _read_exact(helper.rfd, head.count)
        if got is None:
            raise OSError("the helper closed its answers")
        head.codes = list(got)
        helper.pending.popleft()
        helper.queued -= head.count

    def _drop(self, helper: _Helper) -> None:
        self._helpers.remove(helper)
        for ticket in helper.pending:
            ticket._pool = None
        helper.pending.clear()
        for ident in [i for i, h in self._owner.items() if h is helper]:
            del self._owner[ident]
        helper.stop()

    def pids(self) -> list[int]:
        """The process ids of the helpers running now (for measuring them: the benches)."""
        with self._lock:
            return [helper.proc.pid for helper in self._helpers]

    def close(self) -> None:
        """Stop every helper (they finish what they read, then see end of input)."""
        with self._lock:
            for helper in self._helpers:
                helper.stop()
            self._helpers.clear()
            self._owner.clear()


_pools: dict[int, tuple[int, VerifyPool]] = {}  # processes -> (pid that made it, pool)
_pools_lock = threading.Lock()


def pool(processes: int) -> VerifyPool | None:
    """This process's pool of ``processes`` helpers, started on first use (a forked child
    starts its own); None for 0 or if they cannot be started (verify here then)."""
    if processes <= 0:
        return None
    with _pools_lock:
        found = _pools.get(processes)
        if found is None or found[0] != os.getpid():
            try:
                _pools[processes] = found = (os.getpid(), VerifyPool(processes))
            except OSError:
                return None
        return found[1]


def _forget_inherited() -> None:
    """In a forked child: close the pipes to the parent's helpers (they are the parent's,
    and must see end of input when it exits) without stopping them."""
    global _pools_lock
    _pools_lock = threading.Lock()  # another thread may have held it at the fork
    for _pid, found in _pools.values():
        for helper in found._helpers:
            for f in (helper.proc.stdin, helper.proc.stdout):
                with contextlib.suppress(OSError):
                    f and f.close()
            helper.proc.returncode = -1  # not this process's child: nothing to wait for
    _pools.clear()


os.register_at_fork(after_in_child=_forget_inherited)


@atexit.register
def close_pools() -> None:
    """Stop this process's helpers (run at exit; a later :func:`pool` starts new ones)."""
    with _pools_lock:
        for pid, found in list(_pools.values()):
            if pid == os.getpid():
                found.close()
        _pools.clear()
