"""Replay protection (app/core/nonces.py): once per nonce, across instances, restarts and
processes; the time window with both edges; expiry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.base.datadir import DataDir
from app.core.base.errors import BadInput, RateLimited, Replay
from app.core.network import nonces
from app.core.network.nonces import FILE_NAME, NonceStore, close_files
from tests.helpers.datadirs import make_datadir

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_700_000_000
WINDOW = 300


@pytest.fixture
def dd(tmp_path: Path) -> DataDir:
    return make_datadir(tmp_path / "node")


def nonce(i: int) -> bytes:
    return i.to_bytes(24, "big")


def test_a_nonce_is_accepted_once(dd: DataDir) -> None:
    store = NonceStore(dd)
    store.use(nonce(1), NOW, now=NOW, window=WINDOW)
    with pytest.raises(Replay) as err:
        store.use(nonce(1), NOW, now=NOW, window=WINDOW)
    assert err.value.field == "nonce"
    store.use(nonce(2), NOW, now=NOW, window=WINDOW)
    assert (dd.state / FILE_NAME).is_file()
    assert store.count(now=NOW) == 2


def test_a_new_store_and_a_reopened_database_remember(dd: DataDir) -> None:
    NonceStore(dd).use(nonce(1), NOW, now=NOW, window=WINDOW)
    with pytest.raises(Replay):
        NonceStore(DataDir(dd.root, {}, environ={})).use(nonce(1), NOW, now=NOW, window=WINDOW)
    close_files()  # as after a restart: nothing cached in this process
    with pytest.raises(Replay):
        NonceStore(dd).use(nonce(1), NOW + 5, now=NOW + 5, window=WINDOW)


@pytest.mark.parametrize("t", [NOW - WINDOW, NOW + WINDOW, NOW])
def test_window_edges_are_inclusive(dd: DataDir, t: int) -> None:
    NonceStore(dd).use(nonce(1), t, now=NOW, window=WINDOW)


@pytest.mark.parametrize("t", [NOW - WINDOW - 1, NOW + WINDOW + 1, 0])
def test_outside_the_window_is_refused_and_not_recorded(dd: DataDir, t: int) -> None:
    store = NonceStore(dd)
    with pytest.raises(Replay) as err:
        store.use(nonce(1), t, now=NOW, window=WINDOW)
    assert err.value.field == "time"
    assert store.count(now=NOW) == 0


@pytest.mark.parametrize("bad", [b"", bytes(65)])
def test_nonce_length_is_checked(dd: DataDir, bad: bytes) -> None:
    with pytest.raises(BadInput):
        NonceStore(dd).use(bad, NOW, now=NOW, window=WINDOW)


def test_expired_nonces_free_their_record_and_are_still_refused_by_time(dd: DataDir) -> None:
    store = NonceStore(dd)
    store.use(nonce(1), NOW, now=NOW, window=WINDOW)
    store.use(nonce(2), NOW + WINDOW, now=NOW + WINDOW, window=WINDOW)  # row 1 kept: edge
    assert store.count(now=NOW + WINDOW) == 2
    later = NOW + WINDOW + 1
    store.use(nonce(3), later, now=later, window=WINDOW)               # row 1 expired
    assert store.count(now=later) == 2
    with pytest.raises(Replay):
        store.use(nonce(1), NOW, now=later, window=WINDOW)


_CHILD = """
import sys
sys.path.insert(0, {root!r})
from app.core.base.datadir import DataDir
from app.core.base.errors import Replay
from app.core.network.nonces import NonceStore
store = NonceStore(DataDir({data!r}, {{}}, environ={{}}))
won = 0
for i in range({first}, {last}):
    try:
        store.use(i.to_bytes(24, "big"), {now}, now={now}, window={window})
        won += 1
    except Replay:
        pass
print(won)
"""


def _child(dd: DataDir, first: int, last: int) -> subprocess.Popen[str]:
    code = _CHILD.format(root=str(ROOT), data=str(dd.root), first=first, last=last, now=NOW,
                         window=WINDOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env)


def test_two_processes_never_both_accept_a_nonce(dd: DataDir) -> None:
    procs = [_child(dd, 0, 300), _child(dd, 0, 300), _child(dd, 150, 450)]
    wins = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        wins.append(int(out))
    assert sum(wins) == 450  # each of the 450 distinct nonces accepted exactly once
    assert NonceStore(dd).count(now=NOW) == 450


def test_a_nonce_recorded_by_another_process_is_refused_here(dd: DataDir) -> None:
    p = _child(dd, 7, 8)
    out, _ = p.communicate(timeout=60)
    assert int(out) == 1
    with pytest.raises(Replay):
        NonceStore(dd).use(nonce(7), NOW, now=NOW, window=WINDOW)


def test_a_full_table_fails_closed_until_a_record_expires(dd: DataDir,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Every probed record live: the request is refused (429), never a nonce forgotten."""
    monkeypatch.setattr(nonces, "SLOTS", 4)
    monkeypatch.setattr(nonces, "PROBES", 4)
    close_files()
    store = NonceStore(dd)
    for i in range(4):
        store.use(nonce(i), NOW, now=NOW, window=WINDOW)
    with pytest.raises(RateLimited) as err:
        store.use(nonce(9), NOW, now=NOW, window=WINDOW)
    assert err.value.retry_after == WINDOW + 1
    for i in range(4):
        with pytest.raises(Replay):
            store.use(nonce(i), NOW + WINDOW, now=NOW + WINDOW, window=WINDOW)
    later = NOW + WINDOW + 1                   # all four expired: their records are free
    store.use(nonce(9), later, now=later, window=WINDOW)
    assert store.count(now=later) == 1
    close_files()
