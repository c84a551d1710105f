"""app/core/base/flush.py: a batch is made durable by one syncfs, or by an fsync of each file
when the machine holds much unwritten data (so a sync never waits for other programs' data)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.base import flush, fsio
from app.core.base.config import DEFAULTS

MEMINFO = "MemTotal:       24000000 kB\nDirty:              {d} kB\nWriteback:          {w} kB\n"


def _meminfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(text)
    return path


def test_dirty_bytes_adds_dirty_and_writeback(tmp_path: Path) -> None:
    assert flush.dirty_bytes(_meminfo(tmp_path, MEMINFO.format(d=2048, w=1024))) == 3 * 2**20


@pytest.mark.parametrize("text", ["", "Dirty: 12 kB\n", "Dirty: x kB\nWriteback: 0 kB\n",
                                  "\xff\xfe"])
def test_dirty_bytes_unknown_is_none(tmp_path: Path, text: str) -> None:
    assert flush.dirty_bytes(_meminfo(tmp_path, text)) is None
    assert flush.dirty_bytes(tmp_path / "missing") is None


def test_the_machine_has_a_readable_figure() -> None:
    if not Path("/proc/meminfo").exists():
        pytest.skip("no /proc/meminfo (not Linux)")
    assert isinstance(flush.dirty_bytes(), int)


class Calls:
    """Which flushes ran (the real ones: the files are real), in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, dirty: int | None) -> None:
        self.syncfs: list[Path] = []
        self.fsync: list[int] = []
        real_syncfs, real_fsync = fsio.syncfs, os.fsync

        def syncfs(path: Path) -> None:
            self.syncfs.append(path)
            real_syncfs(path)

        def fsync(fd: int) -> None:
            self.fsync.append(os.fstat(fd).st_ino)
            real_fsync(fd)

        monkeypatch.setattr(flush, "dirty_bytes", lambda: dirty)
        monkeypatch.setattr(flush.fsio, "syncfs", syncfs)
        monkeypatch.setattr(flush.os, "fsync", fsync)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[list[int]]:
    fds = []
    for i in range(20):
        fd = os.open(tmp_path / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"post %d" % i)
        fds.append(fd)
    yield fds
    for fd in fds:
        os.close(fd)


LIMIT = DEFAULTS["flush_max_dirty"]


@pytest.mark.parametrize("dirty, how", [(0, "syncfs"), (LIMIT, "syncfs"),
                                        (LIMIT + 1, "fsync"), (None, "fsync")])
def test_one_syncfs_with_little_unwritten_data_else_every_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: list[int], dirty: int | None,
        how: str) -> None:
    calls = Calls(monkeypatch, dirty)
    assert flush.flush_files(tmp_path, files, LIMIT) == how
    if how == "syncfs":
        assert calls.syncfs == [tmp_path] and calls.fsync == []
    else:  # every file's own inode, none forgotten
        assert calls.syncfs == [] and \
            sorted(calls.fsync) == sorted(os.fstat(fd).st_ino for fd in files)


def test_a_limit_of_zero_fsyncs_unless_nothing_is_unwritten(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: list[int]) -> None:
    Calls(monkeypatch, 0)
    assert flush.flush_files(tmp_path, files[:1], 0) == "syncfs"
    calls = Calls(monkeypatch, 1)
    assert flush.flush_files(tmp_path, files[:1], 0) == "fsync" and len(calls.fsync) == 1


def test_a_failed_fsync_is_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  files: list[int]) -> None:
    Calls(monkeypatch, None)
    closed = os.open(tmp_path / "gone", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(closed)
    with pytest.raises(OSError):
        flush.flush_files(tmp_path, [*files, closed], LIMIT)


def test_unnamed_files_flushed_each_then_named_hold_their_data(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The batch writer's order with the fsync path: unnamed files written, each flushed,
    then named (linkat) and the folder flushed; the named files are whole."""
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE on this system")
    calls = Calls(monkeypatch, LIMIT + 1)
    fds = [os.open(tmp_path, os.O_WRONLY | os.O_TMPFILE, 0o644) for _ in range(5)]
    try:
        for i, fd in enumerate(fds):
            os.write(fd, b"post %d" % i)
        assert flush.flush_files(tmp_path, fds, LIMIT) == "fsync"
        assert sorted(calls.fsync) == sorted(os.fstat(fd).st_ino for fd in fds)
        for i, fd in enumerate(fds):
            fsio.link_fd(fd, os.fspath(tmp_path / f"p{i}"))
        fsio.fsync_dir(tmp_path)
    finally:
        for fd in fds:
            os.close(fd)
    assert [(tmp_path / f"p{i}").read_bytes() for i in range(5)] == \
        [b"post %d" % i for i in range(5)]
