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
PER_FILE = DEFAULTS["flush_dirty_per_file"]


def _meminfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(text, "latin-1")
    return path


def test_dirty_bytes_adds_dirty_and_writeback(tmp_path: Path) -> None:
    assert flush.dirty_bytes(_meminfo(tmp_path, MEMINFO.format(d=2048, w=1024))) == 3 * 2**20


@pytest.mark.parametrize("text", ["", "Dirty: 12 kB\n", "Dirty: x kB\nWriteback: 0 kB\n",
                                  "Dirty:\nWriteback: 0 kB\n", "\xff\xfe"])
def test_dirty_bytes_unknown_is_none(tmp_path: Path, text: str) -> None:
    assert flush.dirty_bytes(_meminfo(tmp_path, text)) is None
    assert flush.dirty_bytes(tmp_path / "missing") is None


def test_the_machine_has_a_readable_figure() -> None:
    if not Path("/proc/meminfo").exists():
        pytest.skip("no /proc/meminfo (not Linux)")
    assert isinstance(flush.dirty_bytes(), int)


@pytest.mark.parametrize("files, dirty, cheap", [
    (1000, 0, True), (1000, 1000 * PER_FILE, True), (1000, 1000 * PER_FILE + 1, False),
    (10, 10 * PER_FILE + 1, False), (1000, None, False)])
def test_one_syncfs_only_with_little_unwritten_data_for_the_batch(
        monkeypatch: pytest.MonkeyPatch, files: int, dirty: int | None, cheap: bool) -> None:
    monkeypatch.setattr(flush, "dirty_bytes", lambda: dirty)
    assert flush.syncfs_is_cheap(files, PER_FILE) is cheap


def test_a_limit_of_zero_means_syncfs_only_with_nothing_unwritten(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flush, "dirty_bytes", lambda: 0)
    assert flush.syncfs_is_cheap(1000, 0)
    monkeypatch.setattr(flush, "dirty_bytes", lambda: 1)
    assert not flush.syncfs_is_cheap(1000, 0)


class Fsyncs:
    """The inodes fsync-ed (by the real fsync: the files are real)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inodes: list[int] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            self.inodes.append(os.fstat(fd).st_ino)
            real(fd)

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


@pytest.mark.parametrize("count", [1, 20])
def test_fsync_all_flushes_every_file(monkeypatch: pytest.MonkeyPatch, files: list[int],
                                      count: int) -> None:
    calls = Fsyncs(monkeypatch)
    flush.fsync_all(files[:count])
    assert sorted(calls.inodes) == sorted(os.fstat(fd).st_ino for fd in files[:count])


def test_a_failed_fsync_is_raised(tmp_path: Path, files: list[int]) -> None:
    closed = os.open(tmp_path / "gone", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(closed)
    with pytest.raises(OSError):
        flush.fsync_all([*files, closed])


def test_unnamed_files_flushed_each_then_named_hold_their_data(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The batch writer's order on the fsync path: unnamed files written, each flushed,
    then named (linkat) and the folder flushed; the named files are whole."""
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE on this system")
    calls = Fsyncs(monkeypatch)
    fds = [os.open(tmp_path, os.O_WRONLY | os.O_TMPFILE, 0o644) for _ in range(5)]
    try:
        for i, fd in enumerate(fds):
            os.write(fd, b"post %d" % i)
        flush.fsync_all(fds)
        assert sorted(calls.inodes) == sorted(os.fstat(fd).st_ino for fd in fds)
        for i, fd in enumerate(fds):
            fsio.link_fd(fd, os.fspath(tmp_path / f"p{i}"))
        fsio.fsync_dir(tmp_path)
    finally:
        for fd in fds:
            os.close(fd)
    assert [(tmp_path / f"p{i}").read_bytes() for i in range(5)] == \
        [b"post %d" % i for i in range(5)]
