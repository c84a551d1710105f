"""Making a batch of new files durable without paying for other programs' unwritten data.

One ``syncfs(2)`` makes a whole batch of files durable with one call, but it
flushes *everything* dirty in the file system: data other programs wrote and the
kernel has not written yet (up to ``dirty_expire_centisecs``, 30 s by default,
and up to ``dirty_background_ratio`` of memory) is written and waited for too.
Measured on the development machine (``bench/bench_sync.py``, first-flush table):
a batch of 1,000 post files flushed in about 25 ms on a clean file system and
about 120 ms after another program had written 256 MiB there; an ``fsync`` of
each file on a few threads cost 65-90 ms either way (ext4 commits its journal
once for concurrent fsyncs, and with delayed allocation other programs' data is
not part of that commit).

:func:`flush_files` therefore picks per batch: one ``syncfs`` while the machine
holds little unwritten data (``Dirty`` + ``Writeback`` of ``/proc/meminfo``, an
upper bound for any one file system, at most ``max_dirty`` bytes), else an
``fsync`` of each file. Either way every file's data and inode are on disk when
it returns; the caller then names the files and fsyncs their directories, as
before. Nothing here weakens the durability promise of :mod:`.fsio`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import fsio

FSYNC_THREADS = 8  # concurrent fsyncs share journal commits; more threads gained nothing
_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def dirty_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes of file data the whole machine has not written to disk yet (``Dirty`` +
    ``Writeback``); None where ``meminfo`` cannot be read or lacks them."""
    try:
        text = meminfo.read_text("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    found = [int(line.split()[1]) * 1024 for line in text.splitlines()
             if line.startswith(("Dirty:", "Writeback:")) and line.split()[1].isdigit()]
    return sum(found) if len(found) == 2 else None


def _fsync_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():  # a forked child makes its own
            _pool = (os.getpid(), ThreadPoolExecutor(FSYNC_THREADS,
                                                     thread_name_prefix="diwan-fsync"))
        return _pool[1]


def flush_files(root: Path, fds: Sequence[int], max_dirty: int) -> str:
    """Make the data and inodes of the open files ``fds`` (all on ``root``'s file system)
    durable; return how: ``"syncfs"`` (one flush of the file system, chosen when the machine
    holds at most ``max_dirty`` bytes of unwritten data) or ``"fsync"`` (each file, on
    :data:`FSYNC_THREADS` threads; also when the amount is unknown). ``max_dirty`` is the
    ``flush_max_dirty`` setting. Raises ``OSError`` if a flush fails (nothing is durable
    then that the caller may count on).
    """
    dirty = dirty_bytes()
    if dirty is not None and dirty <= max_dirty:
        fsio.syncfs(root)
        return "syncfs"
    if len(fds) == 1:
        os.fsync(fds[0])
    else:
        for _ in _fsync_pool().map(os.fsync, fds):  # re-raises the first failure
            pass
    return "fsync"
