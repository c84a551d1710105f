"""Balanced accepts for the peer app's workers: a new connection goes to a worker
holding the fewest.

The workers of one gunicorn app share its listening socket, and whichever wakes
first takes a new connection. Peers keep their connections alive across the
pages of a sync, so one worker could end up holding every busy connection and
serve them all on one core while the other cores idle (``bench/bench_peer.py``'s
rounds went 2x apart on this). The master makes a table of each worker's open
connections in memory it shares with the workers it forks (:func:`share`, from
gunicorn's ``on_starting``); each worker keeps its own count there
(:class:`Slot`); a worker that holds more connections than some other live
worker leaves a new connection to that worker for up to ``peer_accept_balance_ms``
(a setting; 0 turns this off), then takes it itself, so a busy or stuck worker
never delays a connection by more than that. The master clears a dead worker's
entry (:func:`forget`, from gunicorn's ``child_exit``).

A count is one aligned 32-bit word written by one process; a reader may see a
count a moment old, which costs at most one connection more on one worker.
See ``docs/architecture.md`` (peer workers).
"""

from __future__ import annotations

import mmap
import os
import selectors
import struct
from typing import Any

PAUSE = 0.002  # seconds a worker stops watching the listener when it steps aside
SLOTS = 64  # workers alive at once (gunicorn's age numbers them; age % SLOTS is the slot)
_ENTRY = struct.Struct("=iI")  # pid, open connections
_table: mmap.mmap | None = None


def share() -> None:
    """Create the shared table, in the master before any worker is forked (idempotent)."""
    global _table
    if _table is None:
        _table = mmap.mmap(-1, SLOTS * _ENTRY.size)  # anonymous, MAP_SHARED: inherited


def forget(pid: int) -> None:
    """Clear the entry of the worker ``pid`` (in the master, once it has exited)."""
    if _table is None:
        return
    for i, (owner, _) in enumerate(_ENTRY.iter_unpack(_table)):
        if owner == pid:
            _ENTRY.pack_into(_table, i * _ENTRY.size, 0, 0)


class Slot:
    """This worker's entry in the shared table; None from :func:`claim` when there is none."""

    def __init__(self, table: mmap.mmap, age: int) -> None:
        self.table = table
        self.offset = (age % SLOTS) * _ENTRY.size
        self.pid = os.getpid()
        _ENTRY.pack_into(table, self.offset, self.pid, 0)

    def set(self, connections: int) -> None:
        """Record that this worker holds ``connections`` open connections."""
        _ENTRY.pack_into(self.table, self.offset, self.pid, max(0, connections))

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections any other live worker holds; None if there is none."""
        counts = [n for pid, n in _ENTRY.iter_unpack(self.table) if pid and pid != self.pid]
        return min(counts) if counts else None


def claim(age: int) -> Slot | None:
    """This worker's :class:`Slot` (in the worker, after the fork), or None when the
    master made no table (a single app run without the node's gunicorn settings)."""
    return Slot(_table, age) if _table is not None else None


class PausingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """gthread's poller, which first has ``worker.watch_paused`` watch again the listeners
    it paused, and waits no longer than the next pause lasts."""

    def __init__(self, worker: Any) -> None:
        super().__init__()
        self.worker = worker

    def select(self, timeout: float | None = None) -> Any:
        return super().select(self.worker.watch_paused(timeout))
