"""app/core/fsio.py: atomic writes survive crashes, locks exclude other processes."""

from __future__ import annotations

import errno
import multiprocessing
import os
import queue
import stat
import time
from pathlib import Path

import pytest

from app.core.base import fsio

CTX = multiprocessing.get_context("fork")


def _visible(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if not fsio.is_temp_name(n))


def test_write_atomic_writes_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "file"
    assert fsio.write_atomic(target, b"one")
    assert fsio.write_atomic(target, b"two" * 100_000)
    assert target.read_bytes() == b"two" * 100_000
    assert os.listdir(tmp_path) == ["file"]


def test_write_atomic_creates_with_mode_from_the_start(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):  # type: ignore[no-untyped-def]
        if flags & os.O_CREAT:
            opened.append((os.fspath(path), mode))
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    fsio.write_atomic(tmp_path / "secret", b"x", mode=0o600)
    monkeypatch.undo()
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    created = [mode for path, mode in opened if Path(path).parent == tmp_path]
    assert created == [0o600]  # the temporary file was born 0600, never chmod-ed


def test_exclusive_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "content"
    assert fsio.write_atomic(target, b"first", exclusive=True) is True
    assert fsio.write_atomic(target, b"second", exclusive=True) is False
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["content"]


def test_mtime_is_set(tmp_path: Path) -> None:
    fsio.write_atomic(tmp_path / "f", b"x", mtime=1_000_000)
    assert (tmp_path / "f").stat().st_mtime == 1_000_000


def test_exception_mid_write_leaves_old_file_whole(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file"
    fsio.write_atomic(target, b"old contents")
    real_write = os.write
    calls = []

    def failing_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real_write(fd, bytes(data[: len(data) // 2]))  # a short write first

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OSError):
        fsio.write_atomic(target, b"new contents that never land" * 10)
    monkeypatch.undo()
    assert len(calls) == 2
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["file"]


def test_exception_at_rename_leaves_old_file_whole(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file"
    fsio.write_atomic(target, b"old")

    def no_rename(src: object, dst: object) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError):
        fsio.write_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file"]


def _die_before_rename(target: Path) -> None:
    os.replace = lambda *a: os._exit(9)  # type: ignore[assignment]  # the process dies here
    fsio.write_atomic(target, b"new")


def test_process_death_before_rename_leaves_old_file_and_only_hidden_temp(tmp_path: Path) -> None:
    target = tmp_path / "file"
    fsio.write_atomic(target, b"old")
    proc = CTX.Process(target=_die_before_rename, args=(target,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 9
    assert target.read_bytes() == b"old"
    assert _visible(tmp_path) == ["file"]          # readers skip the leftover temporary
    leftovers = [n for n in os.listdir(tmp_path) if n != "file"]
    assert all(n.startswith(fsio.TEMP_PREFIX) for n in leftovers)


def _take_lock(path: Path, shared: bool, q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with fsio.file_lock(path, shared=shared):
        q.put("acquired")


@pytest.mark.parametrize(("held_shared", "wanted_shared", "excluded"), [
    (False, False, True), (False, True, True), (True, False, True), (True, True, False),
])
def test_file_lock_across_processes(tmp_path: Path, held_shared: bool, wanted_shared: bool,
                                    excluded: bool) -> None:
    lock = tmp_path / "locks" / "x.lock"
    q: multiprocessing.Queue = CTX.Queue()  # type: ignore[type-arg]
    with fsio.file_lock(lock, shared=held_shared):
        proc = CTX.Process(target=_take_lock, args=(lock, wanted_shared, q))
        proc.start()
        if excluded:
            with pytest.raises(queue.Empty):
                q.get(timeout=0.5)
        else:
            assert q.get(timeout=10) == "acquired"
    if excluded:
        assert q.get(timeout=10) == "acquired"  # released: the other process gets it
    proc.join(10)
    assert proc.exitcode == 0
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_file_lock_released_on_exception(tmp_path: Path) -> None:
    lock = tmp_path / "l"
    with pytest.raises(RuntimeError), fsio.file_lock(lock):
        raise RuntimeError("boom")
    q: multiprocessing.Queue = CTX.Queue()  # type: ignore[type-arg]
    proc = CTX.Process(target=_take_lock, args=(lock, False, q))
    proc.start()
    assert q.get(timeout=10) == "acquired"
    proc.join(10)


def test_batch_writer_commits_new_files_and_keeps_existing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "old").write_bytes(b"original")
    batch = fsio.BatchWriter(tmp_path)
    batch.add(tmp_path / "a" / "old", b"replacement")
    batch.add(tmp_path / "b" / "new", b"fresh", mtime=2_000_000)
    assert _visible(tmp_path / "b") == []  # nothing visible before commit
    written = batch.commit()
    assert written == [tmp_path / "b" / "new"]
    assert (tmp_path / "a" / "old").read_bytes() == b"original"
    assert (tmp_path / "b" / "new").read_bytes() == b"fresh"
    assert (tmp_path / "b" / "new").stat().st_mtime == 2_000_000
    assert os.listdir(tmp_path / "a") == ["old"] and os.listdir(tmp_path / "b") == ["new"]
    assert batch.commit() == []


def test_batch_writer_abort_removes_temporaries(tmp_path: Path) -> None:
    batch = fsio.BatchWriter(tmp_path)
    batch.add(tmp_path / "x", b"1")
    batch.abort()
    assert os.listdir(tmp_path) == []


def test_private_dir_and_helpers(tmp_path: Path) -> None:
    d = tmp_path / "p" / "q"
    fsio.make_private_dir(d)
    assert stat.S_IMODE(d.stat().st_mode) & 0o077 == 0
    (d / "f").write_bytes(b"x")
    assert fsio.remove_quiet(d / "f") is True
    assert fsio.remove_quiet(d / "f") is False
    assert fsio.is_temp_name(".tmp-x.1") and fsio.is_temp_name(".trash-g")
    assert not fsio.is_temp_name("a" * 64 + ".pub")


# --- temporaries left by a crash ------------------------------------------------------

def test_remove_stale_temps_removes_only_old_temporaries(tmp_path: Path) -> None:
    import time

    posts = tmp_path / "posts" / "AB"
    posts.mkdir(parents=True)
    real = posts / "P1.AB.SIG"
    real.write_bytes(b"post")
    os.utime(real, (1000, 1000))  # a post's mtime is its (old) CREATED_TIME
    dotfile = tmp_path / ".lock"
    dotfile.write_bytes(b"")
    crashed = [posts / f"{fsio.TEMP_PREFIX}P1.AB.SIG.0a1b2c", tmp_path / f"{fsio.TEMP_PREFIX}x"]
    for path in crashed:
        path.write_bytes(b"half")
        os.utime(path, (1000, 1000))
    (tmp_path / "outside").write_bytes(b"keep")
    (posts / f"{fsio.TEMP_PREFIX}link").symlink_to(tmp_path / "outside")
    # Just written (ctime now) though its mtime is old: a writer may be at work on it.
    assert fsio.remove_stale_temps(tmp_path, 600) == []
    later = time.time() + 3600
    assert sorted(fsio.remove_stale_temps(tmp_path, 600, now=later)) == sorted(crashed)
    assert not any(p.exists() for p in crashed)
    assert real.read_bytes() == b"post" and dotfile.exists()
    assert (tmp_path / "outside").read_bytes() == b"keep"
    assert (posts / f"{fsio.TEMP_PREFIX}link").is_symlink()


# --- flushes that fail, folders made durable -----------------------------------------

class _FailingLibc:
    """A libc whose ``syncfs`` fails with ``code`` (as the kernel reports a write-back
    error since Linux 5.8); ``calls`` counts them."""

    def __init__(self, code: int) -> None:
        self.code, self.calls = code, 0

    def syncfs(self, fd: int) -> int:
        import ctypes

        self.calls += 1
        ctypes.set_errno(self.code)
        return -1


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC, errno.EDQUOT])
def test_a_failed_syncfs_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                code: int) -> None:
    """A flush that fails is not a flush: the batch that counted on it must not be
    reported stored (it fell back to sync(2), which reports nothing, and went on)."""
    libc = _FailingLibc(code)
    monkeypatch.setattr(fsio, "_libc", libc)
    with pytest.raises(OSError) as caught:
        fsio.syncfs(tmp_path)
    assert caught.value.errno == code and libc.calls == 1


def test_syncfs_falls_back_to_sync_only_where_it_does_not_exist(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    monkeypatch.setattr(fsio, "_libc", _FailingLibc(errno.ENOSYS))
    monkeypatch.setattr(fsio.os, "sync", lambda: synced.append(True))
    fsio.syncfs(tmp_path)
    assert synced == [True]


def test_a_durable_folder_has_its_entry_flushed_before_it_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flushed: list[Path] = []
    real = fsio.fsync_dir
    monkeypatch.setattr(fsio, "fsync_dir", lambda p: (real(p), flushed.append(Path(p))))
    folder = tmp_path / "a" / "b"
    assert fsio.make_durable_dir(folder) is True
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o777 & ~umask  # as mkdir -p
    assert flushed == [tmp_path, tmp_path / "a"]  # each new entry, outermost first
    # Found there, its parent changed just now: another writer may not have flushed it.
    assert fsio.make_durable_dir(folder) is False and flushed[2:] == [tmp_path / "a"]
    os.utime(tmp_path / "a", (time.time() - fsio.RECENT_DIR_SECONDS - 1,) * 2)
    assert fsio.make_durable_dir(folder) is False and len(flushed) == 3  # long flushed
    os.utime(tmp_path / "a", (time.time() + 3600,) * 2)  # ahead of the clock: flushed
    assert fsio.make_durable_dir(folder) is False and flushed[3:] == [tmp_path / "a"]
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        fsio.make_durable_dir(tmp_path / "file")
