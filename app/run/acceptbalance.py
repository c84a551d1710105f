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
(a setting; 0 turns this off) for one spell of a busy listener (one connection or
a queue of them), then takes it itself and does not step aside again for
:data:`DISTRUST` seconds, so a busy or stuck worker delays a connection by at most
that much, once a second. The master gives each worker a free row before it forks
it (:func:`assign`, gunicorn's ``pre_fork``) and clears a dead worker's row
(:func:`forget`, ``child_exit``).

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
DISTRUST = 1.0  # seconds a worker that had to take a connection itself does not step aside
SLOTS = 64  # rows: workers alive at once (the master gives each a free row)
_ENTRY = struct.Struct("=iI")  # pid, open connections
_table: mmap.mmap | None = None
_rows: set[int] = set()  # rows given to live workers (the master's own bookkeeping)


def share() -> None:
    """Create the shared table, in the master before any worker is forked (idempotent)."""
    global _table
    if _table is None:
        _table = mmap.mmap(-1, SLOTS * _ENTRY.size)  # anonymous, MAP_SHARED: inherited


def assign(worker: Any) -> None:
    """Give ``worker`` a free row of the table as ``worker.balance_row`` (in the master,
    before it forks the worker: gunicorn's ``pre_fork``); None when all :data:`SLOTS`
    are taken (that worker then neither steps aside nor counts for the others)."""
    row = next((i for i in range(SLOTS) if i not in _rows), None) if _table is not None else None
    worker.balance_row = row
    if _table is not None and row is not None:
        _rows.add(row)
        _ENTRY.pack_into(_table, row * _ENTRY.size, 0, 0)


def forget(worker: Any) -> None:
    """Clear the row of ``worker``, which has exited (in the master: ``child_exit``)."""
    row = getattr(worker, "balance_row", None)
    if _table is not None and row is not None:
        _ENTRY.pack_into(_table, row * _ENTRY.size, 0, 0)
        _rows.discard(row)


class Slot:
    """This worker's row of the shared table."""

    def __init__(self, table: mmap.mmap, row: int) -> None:
        self.table = table
        self.offset = row * _ENTRY.size
        self.pid = os.getpid()
        _ENTRY.pack_into(table, self.offset, self.pid, 0)

    def set(self, connections: int) -> None:
        """Record that this worker holds ``connections`` open connections."""
        _ENTRY.pack_into(self.table, self.offset, self.pid, max(0, connections))

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections any other live worker holds; None if there is none."""
        counts = [n for pid, n in _ENTRY.iter_unpack(self.table) if pid and pid != self.pid]
        return min(counts) if counts else None


def claim(worker: Any) -> Slot | None:
    """This worker's :class:`Slot` (in the worker, after the fork), or None when the
    master made no table or gave it no row (a single app run without the node's
    gunicorn settings, or more than :data:`SLOTS` workers)."""
    row = getattr(worker, "balance_row", None)
    return Slot(_table, row) if _table is not None and row is not None else None


class PausingSelector(selectors.DefaultSelector):
    """gthread's poller, which first has ``worker.watch_paused`` watch again the listeners
    it paused, and waits no longer than the next pause lasts."""

    def __init__(self, worker: Any) -> None:
        super().__init__()
        self.worker = worker

    def select(self, timeout: float | None = None) -> Any:
        return super().select(self.worker.watch_paused(timeout))
