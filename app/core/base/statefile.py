"""Small JSON documents in ``state/`` shared by the node's processes.

The address book, the sync status and the lying-peer list are each one JSON
object in ``state/<name>.json``. Readers read the file as it is (every write is
atomic, so a reader sees a whole old or a whole new document); writers do a
read-modify-write under an ``flock`` in ``state/locks/``, so the admin API,
the scheduler and the CLI never lose each other's updates.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .datadir import DataDir
from .errors import CorruptFile
from .fsio import file_lock, write_atomic


class StateFile:
    """One locked, atomically written JSON object in ``state/<name>.json`` (mode 0600),
    with its lock file ``state/locks/<name>.lock``."""

    def __init__(self, dd: DataDir, name: str) -> None:
        self.path: Path = dd.state / f"{name}.json"
        self.lock_path: Path = dd.locks / f"{name}.lock"

    def read(self) -> dict[str, Any]:
        """The whole document as a dict; an empty one if the file does not exist yet.

        Raises :class:`CorruptFile` if the file is not JSON or not a JSON object.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise CorruptFile(f"{self.path} is not valid JSON") from None
        if not isinstance(data, dict):
            raise CorruptFile(f"{self.path} does not hold a JSON object")
        return data

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Read, let the caller change the dict in place, write it back (all under the lock).

        If the block raises, nothing is written. Raises :class:`CorruptFile` as
        :meth:`read` does, and ``OSError`` if the file cannot be written.
        """
        with file_lock(self.lock_path):
            data = self.read()
            yield data
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # compact: the C encoder (an indent means the pure-Python one, 10x slower on
            # the sync status of hundreds of contacts, written after each of them)
            text = json.dumps(data, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=True) + "\n"
            write_atomic(self.path, text.encode("ascii"), mode=0o600)


_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_CACHE_SIZE = 64  # documents one process keeps parsed


def read_cached(dd: DataDir, name: str) -> dict[str, Any]:
    """``StateFile(dd, name).read()``, parsed again only when the file changes (its inode,
    mtime or size); for documents read on hot paths. The result is shared: never modify
    it. Raises :class:`CorruptFile` as :meth:`StateFile.read` does."""
    path = f"{dd.state}{os.sep}{name}.json"  # not os.path.join: a hot path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _cache.get(path)
    if cached is None or cached[0] != stamp:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        cached = _cache[path] = (stamp, StateFile(dd, name).read())
    return cached[1]
