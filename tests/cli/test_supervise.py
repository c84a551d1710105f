"""``diwan up`` stays in front of honcho: stop signals it receives reach the child.

A real child process records which signal reached it in its exit status; the
signal is sent to this (the main) thread while ``supervise`` waits.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from app.cli.node import supervise

CHILD = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
signal.signal(signal.SIGINT, lambda *a: sys.exit(8))
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
sys.exit(0)
"""

UNHANDLED = """
import pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""


def signal_main_thread_when(ready: Path, signum: int) -> threading.Thread:
    main = threading.main_thread().ident
    assert main is not None

    def poke() -> None:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        signal.pthread_kill(main, signum)

    thread = threading.Thread(target=poke, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("signum", "status"), [
    (signal.SIGTERM, 7), (signal.SIGINT, 8),
    (signal.SIGHUP, 7),  # the terminal went away: the child is told to terminate
])
def test_stop_signals_are_passed_on(tmp_path: Path, signum: int, status: int) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    ready = tmp_path / "ready"
    thread = signal_main_thread_when(ready, signum)
    code = supervise([sys.executable, "-c", CHILD, str(ready)], env=dict(os.environ),
                     cwd=tmp_path)
    thread.join()
    assert code == status
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def test_a_child_killed_by_a_signal_gives_128_plus_its_number(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    thread = signal_main_thread_when(ready, signal.SIGTERM)
    code = supervise([sys.executable, "-c", UNHANDLED, str(ready)], env=dict(os.environ),
                     cwd=tmp_path)
    thread.join()
    assert code == 128 + signal.SIGTERM


def test_the_exit_status_of_the_child_is_returned(tmp_path: Path) -> None:
    code = supervise([sys.executable, "-c", "import os, sys; sys.exit(len(os.getcwd()) % 7 + 1)"],
                     env=dict(os.environ), cwd=tmp_path)
    assert code == len(str(tmp_path)) % 7 + 1  # and it ran in cwd
