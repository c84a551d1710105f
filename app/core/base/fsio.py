"""Atomic file writes, directory fsync and inter-process file locks.

Every file Diwan writes goes through :func:`write_atomic`: a temporary file in
the same directory (named with :data:`TEMP_PREFIX`, which every reader skips),
written, fsync-ed, renamed over the target, then the directory fsync-ed. A
crash at any point leaves either the old whole file or the new whole file.

Bulk writers (ingesting a page of posts) use :class:`BatchWriter`, which
writes every temporary file, flushes the file system once with ``syncfs(2)``,
renames, then fsyncs each touched directory once: the same guarantee with two
flushes per batch instead of two per file.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import resource
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from . import flush

TEMP_PREFIX = ".tmp-"
RECENT_DIR_SECONDS = 60.0  # a folder whose parent changed this recently may be unflushed

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_renameat2 = getattr(_libc, "renameat2", None)
# Unnamed files a batch keeps open before it must flush and name them: a quarter of the
# process's descriptor limit, so a batch of up to this many posts pays one flush before
# naming, not one per 256.
_MAX_OPEN = max(64, min(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4))


def link_fd(fd: int, dst: str) -> None:
    """Give the (O_TMPFILE) inode open as ``fd`` the name ``dst`` (``linkat(2)`` with
    ``AT_SYMLINK_FOLLOW`` on ``/proc/self/fd/<fd>``: one system call, no ctypes).

    Raises ``FileExistsError`` if ``dst`` is taken (nothing is replaced) and ``OSError`` for
    any other failure.
    """
    # A directory descriptor for the source makes os.link call linkat (plain link(2)
    # never follows the /proc link); the source path is absolute, so it is ignored.
    os.link(f"/proc/self/fd/{fd}", dst, src_dir_fd=fd, follow_symlinks=True)


def rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` atomically unless ``dst`` exists (``FileExistsError`` then).

    One directory operation with ``renameat2(RENAME_NOREPLACE)``; where the
    kernel or file system lacks it, a hard link then an unlink (same result).
    ``src`` is gone afterwards either way; other failures raise ``OSError``.
    """
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                      _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), dst)
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), dst)
    try:
        os.link(src, dst)
    finally:
        os.unlink(src)


def is_temp_name(name: str) -> bool:
    """True for names readers must ignore (temporaries and other dot files)."""
    return name.startswith(".")


def remove_stale_temps(root: Path, max_age: float, now: float | None = None) -> list[Path]:
    """Remove the temporaries a crashed writer left under ``root``; return their paths.

    Only regular files named with :data:`TEMP_PREFIX` are touched (never a post, key or
    other real file, nor what a symlink points at), and only those not changed for
    ``max_age`` seconds: the age is taken from the later of mtime and ctime, because a
    writer sets a temporary's mtime to its post's CREATED_TIME, which may be long past,
    while its ctime is the moment of writing. ``now`` (unix seconds) defaults to the
    clock. A file gone meanwhile or not removable is left and not listed; raises nothing.
    """
    limit = (time.time() if now is None else now) - max_age
    removed: list[Path] = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = Path(folder, name)
            try:
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and max(st.st_mtime, st.st_ctime) < limit:
                    os.unlink(path)
                    removed.append(path)
            except OSError:
                continue
    return removed


def fsync_dir(path: Path) -> None:
    """fsync the directory ``path``, making the names created or removed in it durable.

    Raises ``OSError`` if it is not a readable directory.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: Path) -> None:
    """Flush the whole file system holding the directory ``path`` (one call for many files).

    Raises ``OSError`` if ``path`` is not a readable directory, or if the flush fails
    (``syncfs(2)`` reports a write-back error, ``EIO``, ``ENOSPC`` or ``EDQUOT``, since
    Linux 5.8): nothing it was to make durable may then be counted on. Only where the
    call does not exist (``ENOSYS``) does ``sync(2)`` stand in for it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            code = ctypes.get_errno()
            if code != errno.ENOSYS:
                raise OSError(code, f"syncfs failed: {os.strerror(code)}", os.fspath(path))
            os.sync()
    finally:
        os.close(fd)


def same_file_system(a: Path, b: Path) -> bool:
    """Whether the existing paths ``a`` and ``b`` lie on one file system (a ``syncfs`` of
    either flushes both); False if either cannot be ``stat``-ed."""
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _temp_path(target: Path) -> Path:
    return target.parent / f"{TEMP_PREFIX}{target.name}.{secrets.token_hex(6)}"


def _write_all(fd: int, data: bytes, mtime: float | None) -> None:
    """Write all of ``data`` to ``fd`` (short writes continued), then set ``mtime``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    if mtime is not None:
        os.utime(fd, (mtime, mtime))


def _write_temp(target: Path, data: bytes, mode: int, mtime: float | None) -> Path:
    """A temporary sibling of ``target`` holding ``data`` (and ``mtime``), fsync-ed."""
    tmp = _temp_path(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        _write_all(fd, data, mtime)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def write_atomic(
    target: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    mtime: float | None = None,
    exclusive: bool = False,
) -> bool:
    """Write ``data`` to ``target`` atomically and durably; True if it was written.

    The file is created with ``mode`` from the start (never chmod-ed after), gets
    ``mtime`` (seconds since the epoch) if given, is fsync-ed, renamed into place and its
    directory fsync-ed (``docs/protocol.md``, The private key file: atomic writes). With
    ``exclusive`` the write is skipped, returning False, when the target already exists
    (content-addressed files are never overwritten). Raises ``OSError`` if the directory is
    missing or cannot be written; no temporary file is left behind.
    """
    if exclusive and target.exists():  # named by another writer, maybe not flushed yet
        fsync_dir(target.parent)
        return False
    tmp = _write_temp(target, data, mode, mtime)
    try:
        if exclusive:
            try:
                rename_noreplace(os.fspath(tmp), os.fspath(target))  # target may appear meanwhile
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                fsync_dir(target.parent)  # the other writer's name, maybe not flushed yet
                return False
        else:
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return True


class BatchWriter:
    """Write many new content-addressed files with one file-system flush.

    ``add`` stages a file; ``commit`` makes all of them durable and visible:
    each is written as an unnamed ``O_TMPFILE`` inode (where the file system
    has them; else a temporary name), the file system is flushed once with
    ``syncfs``, then each gets its name with ``linkat`` (or a no-replace
    rename), never replacing an existing file, and the directories are
    fsync-ed. With ``fsync_each`` (:mod:`.flush`: the machine holds much unwritten
    data of other programs, which a ``syncfs`` would wait for), each file is fsync-ed
    instead, then each folder. Nothing is visible before its data is on disk, a crash leaves no
    temporary files behind (an unnamed inode just goes away), and the caller
    acknowledges only after ``commit``.
    (Paths are handled as strings inside: pathlib costs more per file than
    the system calls do, and ingest writes thousands of files a second.)
    """

    def __init__(self, root: Path, *, fsync_each: bool = False) -> None:
        self.root = root
        self.fsync_each = fsync_each  # fsync each file and folder instead of one syncfs
        self._staged: list[tuple[str, str, Path]] = []  # (temp, target, target as given)
        self._unnamed: list[tuple[int, str, Path]] = []  # (O_TMPFILE fd, target, as given)
        self._written: list[Path] = []
        self._touched: set[str] = set()
        self._dirs: set[str] = set()
        self._tag = secrets.token_hex(6)
        self._tmpfile_ok = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")

    def add(self, target: Path, data: bytes, *, mtime: float | None = None) -> None:
        """Stage ``data`` for the new file ``target`` (its folder is created if missing).

        ``mtime`` is seconds since the epoch. Nothing is visible until :meth:`commit`.
        Raises ``OSError`` if the file cannot be written.
        """
        path = os.fspath(target)
        folder, name = os.path.split(path)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        fd, tmp = self._open_unnamed(folder, name)
        try:
            _write_all(fd, data, mtime)
        except BaseException:
            os.close(fd)
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
        if tmp is not None:
            os.close(fd)
            self._staged.append((tmp, path, target))
        else:
            self._unnamed.append((fd, path, target))
        if len(self._unnamed) >= _MAX_OPEN:  # bound the open descriptors of a huge batch
            self._flush_unnamed()

    def _open_unnamed(self, folder: str, name: str) -> tuple[int, str | None]:
        """An O_TMPFILE inode in ``folder`` (no directory entry until linked), else a temp name."""
        if self._tmpfile_ok:
            try:
                return os.open(folder, os.O_WRONLY | os.O_TMPFILE, 0o644), None
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
                self._tmpfile_ok = False
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{name}.{self._tag}-{len(self._staged)}")
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), tmp

    def _flush_unnamed(self) -> None:
        """Flush, then give the unnamed inodes their names (one directory operation each)."""
        if not self._unnamed:
            return
        if self.fsync_each:
            flush.fsync_all([fd for fd, _, _ in self._unnamed])
        else:
            syncfs(self.root)
        pending, self._unnamed = self._unnamed, []
        try:
            for fd, path, target in pending:
                with contextlib.suppress(FileExistsError):  # never replace a stored file
                    link_fd(fd, path)
                    self._written.append(target)
                self._touched.add(os.path.dirname(path))  # a taken name: flushed too
        finally:
            for fd, _, _ in pending:  # after an error the rest stay unnamed and vanish
                os.close(fd)

    def commit(self) -> list[Path]:
        """Make the staged files durable and visible; return the targets that were new.

        A target that already exists is left as it is and not returned (its folder is
        flushed all the same: its writer may not have yet). Raises ``OSError``
        if the flush or a rename fails; staged files not yet named then vanish or stay as
        temporary names that readers skip.
        """
        if not self._staged and not self._unnamed and not self._written:
            return []
        self._flush_unnamed()
        if self._staged:
            syncfs(self.root)
        for tmp, path, target in self._staged:
            try:
                rename_noreplace(tmp, path)
                self._written.append(target)
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):  # the fallback removed it
                    os.unlink(tmp)
            self._touched.add(os.path.dirname(path))  # a taken name: flushed too
        if len(self._touched) > 1 and not self.fsync_each:  # one flush for every folder
            syncfs(self.root)
        else:
            for d in self._touched:
                fsync_dir(Path(d))
        written, self._written = self._written, []
        self._staged.clear()
        self._touched.clear()
        return written

    def abort(self) -> None:
        """Drop every staged file not yet committed (nothing becomes visible). Never raises
        for a temporary file already gone."""
        for tmp, _, _ in self._staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        for fd, _, _ in self._unnamed:  # never named: the inode just goes away
            os.close(fd)
        self._staged.clear()
        self._unnamed.clear()


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an ``flock`` on ``path`` (created 0600 if missing) across processes.

    Exclusive unless ``shared``; blocks until granted. Raises ``OSError`` if the lock file
    cannot be created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) mode 0700, readable by the owner only; an existing
    directory is left as it is. Raises ``OSError`` if it cannot be created."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def make_durable_dir(path: Path, mode: int = 0o700) -> bool:
    """:func:`make_private_dir`, each directory it creates made durable (its parent
    fsync-ed) before this returns: for a folder whose files are counted on once flushed.
    ``path`` gets ``mode``; missing parents the default permissions, as ``mkdir -p``
    gives them. True if ``path`` was missing. Raises ``OSError`` if it cannot be created
    or flushed (``NotADirectoryError`` if something else holds its name).

    A folder found there may be another writer's, made moments ago and not flushed yet
    (between its ``mkdir`` and fsync; or ingest's, left to the ``syncfs`` before any name
    in it, :meth:`app.core.posts.ingest.Ingestor._folder`): if its parent changed in the
    last :data:`RECENT_DIR_SECONDS` (or ahead of the clock), the parent is fsync-ed."""
    if path.is_dir():
        _flush_if_recent(path.parent)
        return False
    return _make_durable(path, mode)


def _make_durable(path: Path, mode: int) -> bool:
    """:func:`make_durable_dir` of a missing ``path``: its missing parents made first."""
    if path.is_dir():  # a parent found there: as durable as before this call
        return False
    _make_durable(path.parent, 0o777)  # less the umask
    with contextlib.suppress(FileExistsError):  # made meanwhile: flushed here all the same
        path.mkdir(mode=mode)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", os.fspath(path))
    fsync_dir(path.parent)
    return True


def _flush_if_recent(folder: Path) -> None:
    """fsync ``folder`` if it changed in the last :data:`RECENT_DIR_SECONDS` (an entry in
    it may not be flushed yet). Raises ``OSError``."""
    if time.time() - folder.stat().st_mtime < RECENT_DIR_SECONDS:
        fsync_dir(folder)


def remove_quiet(path: Path) -> bool:
    """Remove the file ``path`` durably (its directory fsync-ed); False if it was already gone.

    Other failures raise ``OSError``.
    """
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True
