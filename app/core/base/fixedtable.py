"""Fixed-size table files read and written in place: the replay table and the budgets.

Each process opens such a file once (:func:`open_fixed_table`) and keeps the descriptor;
callers read and write fixed-size records with ``pread``/``pwrite`` under an exclusive
``flock`` and the table's thread lock (:mod:`app.core.network.nonces`,
:mod:`app.core.network.budgets`). A forked child opens its own descriptors, since an
inherited one would share the parent's ``flock``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

_tables_lock = threading.Lock()
_tables: dict[str, tuple[int, threading.Lock]] = {}


def _forget_tables_in_child() -> None:
    """A forked child opens its own descriptors (an inherited one shares the parent's flock)."""
    global _tables_lock
    _tables_lock = threading.Lock()
    for fd, _ in _tables.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _tables.clear()


os.register_at_fork(after_in_child=_forget_tables_in_child)


def open_fixed_table(path: str | Path, size: int) -> tuple[int, threading.Lock]:
    """This process's descriptor of the fixed-size table file ``path`` (created 0600 and
    extended to ``size`` bytes if shorter) and a lock for its threads; opened once per
    process (a forked child opens its own: a shared open file would share its ``flock``).
    Callers read and write records in place under ``flock``. Raises ``OSError``."""
    key = os.fspath(path)
    found = _tables.get(key)  # the usual case: no lock (a dict read is atomic)
    if found is not None:
        return found
    with _tables_lock:
        found = _tables.get(key)
        if found is None:
            os.makedirs(os.path.dirname(key), mode=0o700, exist_ok=True)
            fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            found = _tables[key] = (fd, threading.Lock())
        return found


def record_starting(block: bytes, key: bytes, size: int) -> bool:
    """Whether some record of ``block`` (a run of fixed tables' records of ``size`` bytes)
    starts with ``key``: one ``bytes.find`` where a loop would unpack every record."""
    at = block.find(key)
    while at >= 0:
        if at % size == 0:
            return True
        at = block.find(key, at + 1)
    return False


def close_fixed_tables() -> None:
    """Close every descriptor :func:`open_fixed_table` keeps (the next call reopens)."""
    with _tables_lock:
        for fd, _ in _tables.values():
            os.close(fd)
        _tables.clear()
