"""Making a batch of new files durable without paying for other programs' unwritten data.

One ``syncfs(2)`` makes a whole batch of files durable with one call, but it
flushes *everything* dirty in the file system: data other programs wrote and the
kernel has not written yet (up to ``dirty_expire_centisecs``, 30 s by default,
and up to ``dirty_background_ratio`` of memory) is written and waited for too.
Measured on the development machine (``bench/bench_sync.py``, first-flush table,
load average about 4): a batch of 1,000 post files flushed in 36 ms on a clean
file system and in 158 ms after another program had written 256 MiB there; an
``fsync`` of each file on 8 threads took 105 ms clean and 118 ms after the same
256 MiB (ext4 commits its journal once for concurrent fsyncs, and with delayed
allocation other programs' data is not part of that commit). So one ``syncfs``
costs about 0.5 ms per MiB of other data, an ``fsync`` about 0.1 ms per file:
the two meet near 200 KiB of unwritten data per file of the batch.

A batch writer therefore picks per batch: one ``syncfs`` while the machine holds
little unwritten data for the batch's size (:func:`syncfs_is_cheap`: ``Dirty`` +
``Writeback`` of ``/proc/meminfo``, an upper bound for any one file system, at
most ``flush_dirty_per_file`` bytes per file of the batch, 128 KiB by default),
else :func:`fsync_all` of the batch's files. Either way every file's data and
inode are on disk before the files are named and their directories fsync-ed, as
before: the durability promise of :mod:`.fsio` does not weaken. (This module
imports nothing of :mod:`.fsio`, so that :mod:`.fsio` may call it.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
    found = []
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        value = rest.split()
        if name in ("Dirty", "Writeback") and value and value[0].isdigit():
            found.append(int(value[0]) * 1024)  # kB
    return sum(found) if len(found) == 2 else None


def _fsync_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():  # a forked child makes its own
            _pool = (os.getpid(), ThreadPoolExecutor(FSYNC_THREADS,
                                                     thread_name_prefix="diwan-fsync"))
        return _pool[1]


def syncfs_is_cheap(files: int, per_file: int) -> bool:
    """True if one ``syncfs`` should make a batch of ``files`` new files durable: the
    machine holds at most ``files * per_file`` bytes of unwritten data (``per_file`` is the
    ``flush_dirty_per_file`` setting); False when it holds more or the amount is unknown
    (then :func:`fsync_all`)."""
    dirty = dirty_bytes()
    return dirty is not None and dirty <= files * per_file


def fsync_all(fds: Sequence[int]) -> None:
    """``fsync`` each open file of ``fds`` (data and inode durable), on
    :data:`FSYNC_THREADS` threads. Raises the first ``OSError`` (nothing is durable then
    that the caller may count on)."""
    if len(fds) == 1:
        os.fsync(fds[0])
        return
    for _ in _fsync_pool().map(os.fsync, fds):  # re-raises the first failure
        pass
