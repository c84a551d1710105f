"""app/core/base/fsio.py: every write is flushed before its name appears, and the folder after.

A crash must leave the old whole file or the new whole file, and a file the
caller was told is written must survive a power cut. That takes, in this
order: the data written; the file flushed (``fsync`` of the file, or one
``syncfs`` for a batch); the name given (rename or link); the folder flushed
(``fsync`` of the folder, or one ``syncfs`` for a batch touching several folders), so the
new name itself is on disk.

:class:`Trace` replaces the ``os`` module and the libc handle that ``fsio``
sees with recorders that pass every call through to the real ones (the files
are real; nothing is faked) and note, at each write and each flush, which
inode each watched name points to at that moment. Deleting either fsync of
``write_atomic``, or the ``syncfs`` or the folder fsyncs of ``BatchWriter``,
makes these tests fail.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.core.base import fsio

ANY_DEVICE = -1  # a sync(2) flushes every file system


@dataclass(frozen=True)
class Event:
    kind: str  # "write" (data or mtime), "fsync" or "syncfs"
    dev: int
    ino: int
    is_dir: bool
    names: dict[Path, int | None]  # watched name -> inode it points to now (None: absent)


class _Recorder:
    """Stands in for a module or library handle: records some calls, passes all through."""

    def __init__(self, real: Any, **spies: Any) -> None:
        self._real = real
        self.__dict__.update(spies)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class Trace:
    """The writes and flushes ``fsio`` makes, in order, for the names in ``watched``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, watched: list[Path]) -> None:
        self.watched = watched
        self.events: list[Event] = []
        real_os, real_libc = fsio.os, fsio._libc

        def write(fd: int, data: Any) -> int:
            self._note("write", fd)
            return real_os.write(fd, data)

        def utime(target: Any, *args: Any, **kw: Any) -> None:
            real_os.utime(target, *args, **kw)
            if isinstance(target, int):
                self._note("write", target)

        def fsync(fd: int) -> None:
            real_os.fsync(fd)
            self._note("fsync", fd)

        def sync() -> None:  # every file system: any device
            real_os.sync()
            self._note("syncfs", None)

        def syncfs(fd: int) -> int:
            result = int(real_libc.syncfs(fd))
            if result == 0:
                self._note("syncfs", fd)
            return result

        monkeypatch.setattr(fsio, "os", _Recorder(real_os, write=write, utime=utime,
                                                  fsync=fsync, sync=sync))
        monkeypatch.setattr(fsio, "_libc", _Recorder(real_libc, syncfs=syncfs))

    def _note(self, kind: str, fd: int | None) -> None:
        st = os.fstat(fd) if fd is not None else None
        names = {p: (os.stat(p).st_ino if os.path.lexists(p) else None) for p in self.watched}
        self.events.append(Event(kind, st.st_dev if st else ANY_DEVICE, st.st_ino if st else 0,
                                 bool(st and stat.S_ISDIR(st.st_mode)), names))

    def assert_durable(self, target: Path) -> None:
        """``target``'s data was flushed after its last write and before it got its name,
        and its folder was fsync-ed after it got its name."""
        final, folder = os.stat(target), os.stat(target.parent)
        ino = final.st_ino
        writes = [i for i, e in enumerate(self.events) if e.kind == "write" and e.ino == ino]
        assert writes, f"no write to {target.name} was seen"
        flushed = [i for i, e in enumerate(self.events)
                   if i > writes[-1] and e.names[target] != ino
                   and ((e.kind == "fsync" and e.ino == ino and e.dev == final.st_dev)
                        or (e.kind == "syncfs" and e.dev in (final.st_dev, ANY_DEVICE)))]
        assert flushed, f"{target.name} got its name before its data was flushed"
        named = [i for i, e in enumerate(self.events) if e.names[target] == ino and (
                 (e.kind == "fsync" and e.is_dir and e.ino == folder.st_ino
                  and e.dev == folder.st_dev)
                 or (e.kind == "syncfs" and e.dev in (folder.st_dev, ANY_DEVICE)))]
        assert named, (f"the folder of {target.name} was not flushed (fsync or syncfs) after "
                       "the rename")


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("mtime", [None, 1_600_000_000.0])
def test_write_atomic_flushes_file_then_names_it_then_flushes_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exclusive: bool,
        mtime: float | None) -> None:
    target = tmp_path / "file"
    trace = Trace(monkeypatch, [target])
    assert fsio.write_atomic(target, b"x" * 100_000, mtime=mtime, exclusive=exclusive)
    trace.assert_durable(target)
    assert target.read_bytes() == b"x" * 100_000


def test_write_atomic_replacing_a_file_flushes_in_the_same_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    trace = Trace(monkeypatch, [target])
    assert fsio.write_atomic(target, b"new")
    trace.assert_durable(target)
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "temp-names"])
def test_batch_writer_flushes_files_then_names_them_then_flushes_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool) -> None:
    monkeypatch.setattr(fsio, "_MAX_OPEN", 2)  # the O_TMPFILE path also names mid-batch
    targets = [tmp_path / d / f"f{i}" for d in ("a", "b") for i in range(3)]
    trace = Trace(monkeypatch, targets)
    batch = fsio.BatchWriter(tmp_path)
    if not unnamed:
        batch._tmpfile_ok = False
    for i, target in enumerate(targets):
        batch.add(target, f"data {i}".encode() * 1000, mtime=1_600_000_000 + i)
    assert batch.commit() == targets
    if unnamed:  # the O_TMPFILE path was the one taken
        assert batch._tmpfile_ok
    for i, target in enumerate(targets):
        trace.assert_durable(target)
        assert target.read_bytes() == f"data {i}".encode() * 1000
