"""The helper process's side of :mod:`.verifyprocs`: the frames and the serving loop.

A helper is a fresh interpreter that imports only this module and :mod:`.crypto`. It
reads requests from stdin and answers on stdout (the protocol is in
:mod:`.verifyprocs`): it checks signatures, writes the file of each post that verifies
as an unnamed ``O_TMPFILE`` inode (data, then mtime) and holds it until told to name
it (a no-replace ``linkat``) or drop it.
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Sequence

from . import crypto

Job = tuple[bytes, bytes, bytes]  # (public key 32 B, P1, signature 64 B)
Write = tuple[str, bytes, int]     # (folder, the whole post file, mtime in unix seconds)
BAD, WRITTEN, VERIFIED = 0, 1, 2   # answers to a check (VERIFIED: good, file not written)
LINKED, EXISTED, FAILED = 1, 0, 2  # answers to a link
_HEAD = struct.Struct("<cQI")      # kind (V check, W check and write, L link), ticket, length
_ITEM = struct.Struct("<32s64sI")
_WITEM = struct.Struct("<32s64sIIqH")  # + file length, mtime, folder length
_LITEM = struct.Struct("<IH")      # job number, destination length
_PIPE_BYTES = 1 << 20  # a whole batch of ordinary posts fits in the pipe at once


def verify_jobs(jobs: Sequence[Job]) -> list[bool]:
    """Check each ``(key, p1, signature)`` here: ``crypto.verify`` with ``CTX_POST``."""
    return [crypto.verify(key, crypto.CTX_POST, p1, sig) for key, p1, sig in jobs]


def _frame(kind: bytes, ticket: int, parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    return _HEAD.pack(kind, ticket, len(body)) + body


def encode(ticket: int, jobs: Sequence[Job], writes: Sequence[Write] | None = None, *,
           kind: bytes = b"W") -> bytes:
    """One request frame: check ``jobs`` (and, with ``writes``, one per job, write the file
    of each job that verifies, or with ``kind`` ``P`` keep it to write on a later ``F``
    request; a file must start with its job's P1, else it is not written). A key not of
    32 bytes or a signature not of 64 is sent as zeros, which never verify."""
    parts: list[bytes] = []
    for n, (key, p1, sig) in enumerate(jobs):
        if len(key) != 32 or len(sig) != 64:
            key, sig = bytes(32), bytes(64)
        if writes is None:
            parts += (_ITEM.pack(key, sig, len(p1)), p1)
        else:
            folder, raw, mtime = writes[n]
            if not raw.startswith(p1):  # P1 is sent once, as the start of the file
                raw, mtime = p1, -1
            name = os.fsencode(folder)
            parts += (_WITEM.pack(key, sig, len(p1), len(raw), mtime, len(name)), name, raw)
    return _frame(kind if writes is not None else b"V", ticket, parts)


def _decode(kind: bytes, body: bytes) -> list[tuple[Job, Write | None]]:
    jobs: list[tuple[Job, Write | None]] = []
    at, view = 0, memoryview(body)
    while at < len(body):
        if kind == b"V":
            key, sig, n = _ITEM.unpack_from(body, at)
            at += _ITEM.size
            jobs.append(((key, bytes(view[at:at + n]), sig), None))
            at += n
            continue
        key, sig, n, size, mtime, folder_len = _WITEM.unpack_from(body, at)
        at += _WITEM.size
        folder = os.fsdecode(bytes(view[at:at + folder_len]))
        at += folder_len
        raw = bytes(view[at:at + size])
        p1 = raw[:n]
        at += size
        jobs.append(((key, p1, sig), (folder, raw, mtime)))
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


def _write_unnamed(folder: str, raw: bytes, mtime: int) -> int | None:
    """An O_TMPFILE inode in ``folder`` holding ``raw`` with ``mtime``; None if it failed."""
    try:
        fd = os.open(folder, os.O_WRONLY | os.O_TMPFILE, 0o644)
    except OSError:
        return None
    try:
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
        os.utime(fd, (mtime, mtime))
    except OSError:
        os.close(fd)
        return None
    return fd


class _Server:
    """A helper's state: the unnamed files it holds, by ticket, until told to link them."""

    def __init__(self) -> None:
        self.held: dict[int, list[int | None]] = {}
        self.kept: dict[int, list[Write | None]] = {}  # files of P checks, not written yet

    def check(self, ticket: int, kind: bytes, body: bytes) -> bytes:
        answers: list[int] = []
        kept: list[Write | None] = []
        for job, write in _decode(kind, body):
            good = verify_jobs([job])[0]
            kept.append(write if good else None)
            answers.append(VERIFIED if good else BAD)
        if kind == b"P":
            self.kept[ticket] = kept
            return bytes(answers)
        if kind == b"W":
            return self.write(ticket, kept)
        return bytes(answers)

    def write(self, ticket: int, kept: list[Write | None]) -> bytes:
        """Write the files ``kept`` (None: a post that did not verify) and hold them."""
        answers: list[int] = []
        fds: list[int | None] = []
        for write in kept:
            fd = None if write is None or write[2] < 0 else _write_unnamed(*write)
            answers.append(BAD if write is None else WRITTEN if fd is not None else VERIFIED)
            fds.append(fd)
        self.held[ticket] = fds
        return bytes(answers)

    def link(self, ticket: int, body: bytes) -> bytes:
        self.kept.pop(ticket, None)  # never written: dropped
        fds, answers, at = self.held.pop(ticket, []), list[int](), 0
        try:
            while at < len(body):
                n, size = _LITEM.unpack_from(body, at)
                at += _LITEM.size
                dst = os.fsdecode(body[at:at + size])
                at += size
                fd = fds[n] if n < len(fds) else None
                answers.append(FAILED if fd is None else _link(fd, dst))
        finally:
            for fd in fds:  # the others are dropped: an unnamed inode just goes away
                if fd is not None:
                    os.close(fd)
        return bytes(answers)


def _link(fd: int, dst: str) -> int:
    try:
        os.link(f"/proc/self/fd/{fd}", dst, src_dir_fd=fd, follow_symlinks=True)
    except FileExistsError:
        return EXISTED
    except OSError:
        return FAILED
    return LINKED


def serve(rfd: int = 0, wfd: int = 1) -> None:
    """A helper's loop: answer requests read from ``rfd`` on ``wfd`` until end of input
    or until the parent is gone (its end of ``wfd`` closed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is for the parent
    server = _Server()
    while True:
        head = _read_exact(rfd, _HEAD.size)
        if head is None:
            return
        kind, ticket, size = _HEAD.unpack(head)
        body = _read_exact(rfd, size)
        if body is None:
            return
        if kind == b"L":
            answer = server.link(ticket, body)
        elif kind == b"F":
            answer = server.write(ticket, server.kept.pop(ticket, []))
        else:
            answer = server.check(ticket, kind, body)
        out = memoryview(answer)
        try:
            while out:
                out = out[os.write(wfd, out):]
        except BrokenPipeError:  # the parent died (its answers are of no use): end quietly
            return
