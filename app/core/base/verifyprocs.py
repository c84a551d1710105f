"""Post signature checks on helper processes, so ingest keeps every core busy.

Ingest (:mod:`app.core.posts.ingest`) hands a batch's Ed25519 checks of
``CTX_POST + P1`` to :func:`pool`: ``verify_processes`` helper processes, each a fresh
interpreter that imports only :mod:`.crypto` and this module (not Flask, not the app)
and answers one byte per signature. They run while ingest parses, checks and stores
the posts whose answers came back, and while it stores the batch before. Processes,
not threads: PyNaCl releases the GIL inside ``crypto_sign_open``, but every call
takes it back, and a thread waiting for it while the ingesting thread parses JSON
waits a whole switch interval (5 ms) per signature; ``bench/bench_ingest.py`` measures
both (``bench/README.md``).

Protocol on the helper's stdin/stdout (both pipes, nothing else): a request is a
4-byte little-endian body length, then per signature a 32-byte key, the 64-byte
signature, a 4-byte length and the message (P1); the answer is one byte per signature,
``1`` if it verifies. A helper exits at end of input, so one outlives its parent only
until the parent's end of the pipe closes. Anything going wrong with a helper (it died,
a pipe broke) makes the pool verify in the calling process instead: never a wrong
answer, only a slower one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from . import crypto

Job = tuple[bytes, bytes, bytes]  # (public key 32 B, P1, signature 64 B)
_LEN = struct.Struct("<I")
_ITEM = struct.Struct("<32s64sI")
_F_SETPIPE_SZ = 1031
_PIPE_BYTES = 1 << 20  # a whole batch of ordinary posts fits in the pipe at once
_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the ``app`` package
# The helper's start: stand-in packages, so importing this module does not run
# app/__init__.py (Flask); then serve.
_BOOT = """import os, sys, types
root = sys.argv[1]
for name in ("app", "app.core", "app.core.base"):
    m = types.ModuleType(name)
    m.__path__ = [os.path.join(root, *name.split("."))]
    sys.modules[name] = m
from app.core.base.verifyprocs import serve
serve()
"""


def verify_jobs(jobs: Sequence[Job]) -> list[bool]:
    """Check each ``(key, p1, signature)`` here: ``crypto.verify`` with ``CTX_POST``."""
    return [crypto.verify(key, crypto.CTX_POST, p1, sig) for key, p1, sig in jobs]


def encode(jobs: Sequence[Job]) -> bytes:
    """One request frame for ``jobs`` (keys of 32 bytes and signatures of 64, else the
    job is sent with an all-zero signature, which never verifies)."""
    parts = [b""]
    for key, p1, sig in jobs:
        if len(key) != 32 or len(sig) != 64:
            key, sig = bytes(32), bytes(64)
        parts += (_ITEM.pack(key, sig, len(p1)), p1)
    body = b"".join(parts)
    return _LEN.pack(len(body)) + body


def decode(body: bytes) -> list[Job]:
    """The jobs of one request body (the frame without its length)."""
    jobs, at, view = [], 0, memoryview(body)
    while at < len(body):
        key, sig, n = _ITEM.unpack_from(body, at)
        at += _ITEM.size
        jobs.append((key, bytes(view[at:at + n]), sig))
        at += n
    return jobs


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        got = os.read(fd, min(left, _PIPE_BYTES))
        if not got:
            return None
        chunks.append(got)
        left -= len(got)
    return b"".join(chunks)


def serve(rfd: int = 0, wfd: int = 1) -> None:
    """A helper's loop: answer requests read from ``rfd`` on ``wfd`` until end of input."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is for the parent
    while True:
        head = _read_exact(rfd, _LEN.size)
        body = None if head is None else _read_exact(rfd, _LEN.unpack(head)[0])
        if body is None:
            return
        answers = verify_jobs(decode(body))
        out = memoryview(bytes(answers))
        while out:
            out = out[os.write(wfd, out):]


class Ticket:
    """The answers to one :meth:`VerifyPool.submit`, in the order of its jobs."""

    def __init__(self, pool: VerifyPool | None, jobs: Sequence[Job]) -> None:
        self._pool, self.jobs = pool, jobs
        self.answers: list[bool] | None = None if pool is not None else verify_jobs(jobs)

    def result(self) -> list[bool]:
        """Wait for the answers (one bool per job; verified here if a helper failed)."""
        if self.answers is None and self._pool is not None:
            self._pool.collect(self)
        if self.answers is None:
            self.answers = verify_jobs(self.jobs)
        return self.answers


class _Helper:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, os.fspath(_ROOT)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True, bufsize=0)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.wfd, _F_SETPIPE_SZ, _PIPE_BYTES)
        self.pending: deque[Ticket] = deque()
        self.queued = 0  # signatures sent and not answered yet

    def stop(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                f and f.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class VerifyPool:
    """``processes`` helpers answering post signature checks (thread-safe).

    Raises ``OSError`` if a helper cannot be started.
    """

    def __init__(self, processes: int) -> None:
        self._lock = threading.Lock()
        self._helpers = [_Helper() for _ in range(processes)]

    def submit(self, jobs: Sequence[Job]) -> Ticket:
        """Send ``jobs`` to the least busy helper; the :class:`Ticket` holds the answers."""
        frame = encode(jobs)
        with self._lock:
            if not self._helpers:
                return Ticket(None, jobs)
            helper = min(self._helpers, key=lambda h: h.queued)
            ticket = Ticket(self, jobs)
            try:
                view = memoryview(frame)
                while view:
                    view = view[os.write(helper.wfd, view):]
            except OSError:
                self._drop(helper)
                return Ticket(None, jobs)
            helper.pending.append(ticket)
            helper.queued += len(jobs)
            return ticket

    def collect(self, ticket: Ticket) -> None:
        """Read answers until ``ticket`` has its own (earlier tickets get theirs on the way)."""
        with self._lock:
            helper = next((h for h in self._helpers if ticket in h.pending), None)
            while helper is not None and ticket.answers is None:
                head = helper.pending[0]
                got = None
                with contextlib.suppress(OSError):
                    got = _read_exact(helper.rfd, len(head.jobs))
                if got is None:
                    self._drop(helper)  # its tickets are verified here instead
                    return
                head.answers = [b == 1 for b in got]
                helper.pending.popleft()
                helper.queued -= len(head.jobs)

    def _drop(self, helper: _Helper) -> None:
        self._helpers.remove(helper)
        for ticket in helper.pending:
            ticket._pool = None
        helper.pending.clear()
        helper.stop()

    def close(self) -> None:
        """Stop every helper (they finish what they read, then see end of input)."""
        with self._lock:
            for helper in self._helpers:
                helper.stop()
            self._helpers.clear()


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


@atexit.register
def close_pools() -> None:
    """Stop this process's helpers (run at exit; a later :func:`pool` starts new ones)."""
    with _pools_lock:
        for pid, found in list(_pools.values()):
            if pid == os.getpid():
                found.close()
        _pools.clear()
