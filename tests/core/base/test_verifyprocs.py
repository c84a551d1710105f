"""app/core/base/verifyprocs.py: helper processes check signatures and write files.

Real helper processes, real files: the answers must equal checking in this process,
files get a name only when linked (never replacing one), the rest vanish, and a helper
that dies mid-way changes nothing but the speed.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.base import crypto, verifyhelper, verifyprocs

SEED = hashlib.sha256(b"verifyprocs test").digest()
PUB = crypto.signing_public(SEED)


def _jobs(n: int) -> list[tuple[bytes, bytes, bytes]]:
    jobs = []
    for i in range(n):
        p1 = f"payload-{i}".encode()
        jobs.append((PUB, p1, crypto.sign(SEED, crypto.CTX_POST, p1)))
    jobs[1] = (PUB, jobs[1][1], bytes(64))           # a wrong signature
    jobs[2] = (PUB[:31], jobs[2][1], jobs[2][2])       # a key of the wrong length
    jobs[3] = (PUB, b"other", jobs[3][2])              # signed something else
    return jobs


@pytest.fixture
def pool() -> Iterator[verifyprocs.VerifyPool]:
    made = verifyprocs.VerifyPool(2)
    yield made
    made.close()


def test_answers_equal_checking_here(pool: verifyprocs.VerifyPool) -> None:
    jobs = _jobs(100)
    tickets = [pool.submit(jobs[i:i + 7]) for i in range(0, 100, 7)]
    got = [ok for t in tickets for ok in t.result()]
    assert got == verifyprocs.verify_jobs(jobs)
    assert got[:5] == [True, False, False, False, True] and sum(got) == 97


def test_pids_are_the_running_helpers_and_drop_a_dead_one(
        pool: verifyprocs.VerifyPool) -> None:
    pids = pool.pids()
    assert len(pids) == 2 and os.getpid() not in pids
    for pid in pids:  # each a child of this process, alive
        assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == \
            str(os.getpid())
    os.kill(pids[0], signal.SIGKILL)
    os.waitpid(pids[0], 0)
    # the least busy helper gets the request: the first, dead; found so, and dropped
    assert pool.submit(_jobs(5)).result() == verifyprocs.verify_jobs(_jobs(5))
    assert pool.pids() == [pids[1]]


class _DroppedWhileRead(verifyprocs.Ticket):
    """A ticket whose pool is dropped (``_drop`` sets ``_pool`` to None, on another
    thread) right after its first read: what a concurrent drop can do between two reads."""

    reads = 0

    @property  # type: ignore[override]
    def _pool(self) -> verifyprocs.VerifyPool | None:
        self.reads += 1
        return self._real if self.reads == 1 else None

    @_pool.setter
    def _pool(self, pool: verifyprocs.VerifyPool | None) -> None:
        self._real, self.reads = pool, 0


def test_a_pool_dropped_between_reads_never_breaks_a_ticket(
        pool: verifyprocs.VerifyPool) -> None:
    jobs = _jobs(5)

    def dropping() -> _DroppedWhileRead:  # a ticket no helper holds: collect finds nothing
        return _DroppedWhileRead(pool, jobs, len(jobs), 10**6)
    assert dropping().wait() == [verifyprocs.VERIFIED if ok else verifyprocs.BAD
                                 for ok in verifyprocs.verify_jobs(jobs)]  # checked here
    assert dropping().link_codes() is None  # no answer: the caller writes the files
    assert dropping().start_link([(0, "/nowhere")]) is None  # the helper holds nothing


def test_written_files_get_a_name_only_when_linked(pool: verifyprocs.VerifyPool,
                                                   tmp_path: Path) -> None:
    jobs = _jobs(6)
    files = [p1 + b".rest" for _, p1, _ in jobs]
    ticket = pool.submit(jobs, [(str(tmp_path), raw, 1_600_000_000 + i)
                                for i, raw in enumerate(files)])
    assert ticket.wait() == [verifyprocs.WRITTEN, verifyprocs.BAD, verifyprocs.BAD,
                             verifyprocs.BAD, verifyprocs.WRITTEN, verifyprocs.WRITTEN]
    assert list(tmp_path.iterdir()) == []  # written, but unnamed
    (tmp_path / "taken").write_bytes(b"already here")
    codes = ticket.link([(0, str(tmp_path / "zero")), (4, str(tmp_path / "taken")),
                         (1, str(tmp_path / "bad"))])
    assert codes == [verifyprocs.LINKED, verifyprocs.EXISTED, verifyprocs.FAILED]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "zero"]  # job 5 dropped
    assert (tmp_path / "zero").read_bytes() == files[0]
    assert os.stat(tmp_path / "zero").st_mtime == 1_600_000_000
    assert (tmp_path / "taken").read_bytes() == b"already here"  # never replaced
    assert ticket.link([(5, str(tmp_path / "late"))]) is None  # a ticket links once


def test_a_released_ticket_leaves_nothing(pool: verifyprocs.VerifyPool,
                                          tmp_path: Path) -> None:
    jobs = _jobs(5)
    ticket = pool.submit(jobs, [(str(tmp_path), p1, 1) for _, p1, _ in jobs])
    ticket.wait()
    ticket.release()
    assert pool.submit(_jobs(5)).result()[0]  # the helper still answers
    assert list(tmp_path.iterdir()) == []


def test_a_dead_helper_means_checking_here(pool: verifyprocs.VerifyPool,
                                           tmp_path: Path) -> None:
    jobs = _jobs(40)
    for helper in list(pool._helpers):
        os.kill(helper.proc.pid, signal.SIGKILL)
        helper.proc.wait()
    ticket = pool.submit(jobs, [(str(tmp_path), p1, 1) for _, p1, _ in jobs])
    assert ticket.result() == verifyprocs.verify_jobs(jobs)
    assert verifyprocs.WRITTEN not in ticket.wait()  # nothing is held: the caller writes
    assert ticket.link([(0, str(tmp_path / "x"))]) is None
    assert list(tmp_path.iterdir()) == []


def test_a_helper_dying_after_writing_loses_only_its_unnamed_files(
        pool: verifyprocs.VerifyPool, tmp_path: Path) -> None:
    jobs = _jobs(8)
    ticket = pool.submit(jobs, [(str(tmp_path), p1, 1) for _, p1, _ in jobs])
    assert verifyprocs.WRITTEN in ticket.wait()
    for helper in list(pool._helpers):
        os.kill(helper.proc.pid, signal.SIGKILL)
        helper.proc.wait()
    assert ticket.link([(0, str(tmp_path / "x"))]) is None
    assert list(tmp_path.iterdir()) == []


def _unnamed_files(pool: verifyprocs.VerifyPool, folder: Path) -> int:
    """How many unnamed (``O_TMPFILE``) files the helpers hold open in ``folder``."""
    held = 0
    for helper in pool._helpers:
        fds = Path(f"/proc/{helper.proc.pid}/fd")
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith(f"{folder}/#") and target.endswith("(deleted)")
    return held


def test_checks_held_write_no_file_until_asked(pool: verifyprocs.VerifyPool,
                                               tmp_path: Path) -> None:
    """Inside ``holding()`` a helper checks at once but writes nothing (ingest's group
    commit flushes the last batch meanwhile); ``Later.send`` has the files written, and
    they are named as any others."""
    jobs = _jobs(6)
    files = [p1 + b".rest" for _, p1, _ in jobs]
    with verifyprocs.holding() as later:
        ticket = pool.submit(jobs, [(str(tmp_path), raw, 1_600_000_000 + i)
                                    for i, raw in enumerate(files)])
    assert ticket.wait() == [verifyprocs.VERIFIED, verifyprocs.BAD, verifyprocs.BAD,
                             verifyprocs.BAD, verifyprocs.VERIFIED, verifyprocs.VERIFIED]
    assert _unnamed_files(pool, tmp_path) == 0  # checked, nothing written yet
    later.send()
    assert ticket.file_codes() == [verifyprocs.WRITTEN, verifyprocs.BAD, verifyprocs.BAD,
                                   verifyprocs.BAD, verifyprocs.WRITTEN, verifyprocs.WRITTEN]
    assert _unnamed_files(pool, tmp_path) == 3
    assert ticket.link([(0, str(tmp_path / "zero")), (1, str(tmp_path / "bad"))]) == [
        verifyprocs.LINKED, verifyprocs.FAILED]
    assert [p.name for p in tmp_path.iterdir()] == ["zero"]
    assert (tmp_path / "zero").read_bytes() == files[0]
    assert os.stat(tmp_path / "zero").st_mtime == 1_600_000_000
    assert _unnamed_files(pool, tmp_path) == 0  # the others dropped with the link


def test_checks_held_and_never_written_leave_nothing(pool: verifyprocs.VerifyPool,
                                                     tmp_path: Path) -> None:
    jobs = _jobs(5)
    with verifyprocs.holding():
        ticket = pool.submit(jobs, [(str(tmp_path), p1, 1) for _, p1, _ in jobs])
        checked_only = pool.submit(jobs)  # a check without files is not held back
    assert ticket.result() == checked_only.result() == verifyprocs.verify_jobs(jobs)
    assert verifyprocs.WRITTEN not in ticket.file_codes()  # never asked: no file
    assert ticket.link([(0, str(tmp_path / "x"))]) == [verifyprocs.FAILED]
    assert pool.submit(_jobs(5)).result()[0]  # the helper still answers
    assert list(tmp_path.iterdir()) == [] and _unnamed_files(pool, tmp_path) == 0


def test_a_helper_dying_before_writing_held_checks_means_no_files(
        pool: verifyprocs.VerifyPool, tmp_path: Path) -> None:
    jobs = _jobs(8)
    with verifyprocs.holding() as later:
        ticket = pool.submit(jobs, [(str(tmp_path), p1, 1) for _, p1, _ in jobs])
    assert ticket.result() == verifyprocs.verify_jobs(jobs)
    for helper in list(pool._helpers):
        os.kill(helper.proc.pid, signal.SIGKILL)
        helper.proc.wait()
    later.send()  # the helper is gone: nothing to ask, nothing raised
    assert verifyprocs.WRITTEN not in ticket.file_codes()
    assert ticket.link([(0, str(tmp_path / "x"))]) is None
    assert list(tmp_path.iterdir()) == []


def test_frames_round_trip() -> None:
    jobs = _jobs(4)[:3]
    frame = verifyprocs.encode(7, jobs, [("/some/folder", p1 + b"!", 5) for _, p1, _ in jobs])
    kind, ticket, size = verifyhelper._HEAD.unpack_from(frame)
    assert (kind, ticket, size) == (b"W", 7, len(frame) - verifyhelper._HEAD.size)
    decoded = verifyhelper._decode(kind, frame[verifyhelper._HEAD.size:])
    assert [j for j, _ in decoded] == [(bytes(32), jobs[2][1], bytes(64)) if i == 2 else j
                                       for i, j in enumerate(jobs)]
    assert [w for _, w in decoded] == [("/some/folder", p1 + b"!", 5) for _, p1, _ in jobs]


def test_more_owed_answers_than_a_pipe_holds_do_not_deadlock() -> None:
    """Found by the end-of-session tester: ingest sends a whole batch's checks before
    reading any answer; a helper owing more answers than its stdout pipe holds (65,536
    bytes, one per item) stopped reading, and once the requests also filled the pipe
    the other way (1 MiB), both waited on each other for ever. Now
    the pool reads owed answers before it sends more than half the pipe's worth."""
    import threading

    one = verifyprocs.VerifyPool(1)
    jobs = [(bytes(32), b"x" * 100, bytes(64))] * 64  # bad keys: each check is quick
    done: list[int] = []

    def flood() -> None:
        tickets = [one.submit(jobs) for _ in range(100_000 // 64)]
        done.append(sum(len(t.wait()) for t in tickets))

    worker = threading.Thread(target=flood, daemon=True)
    try:
        worker.start()
        worker.join(60)
        assert not worker.is_alive(), "the pool and its helper wait on each other"
        assert done == [100_000 // 64 * 64]
    finally:
        if not worker.is_alive():
            one.close()
        else:  # unblock the stuck helper so the test process can go on
            for helper in one._helpers:
                helper.proc.kill()


def test_a_helper_whose_parent_is_gone_ends_quietly() -> None:
    """Its answer's pipe has no reader (the parent was SIGKILLed): serve returns instead
    of raising BrokenPipeError into the node's log (found by the end-of-session tester,
    the scheduler killed mid-sync)."""
    rin, win = os.pipe()
    rout, wout = os.pipe()
    os.write(win, verifyhelper.encode(1, _jobs(4)))
    os.close(win)
    os.close(rout)
    try:
        verifyhelper.serve(rin, wout)  # raised BrokenPipeError before the fix
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.close(rin)
        os.close(wout)
