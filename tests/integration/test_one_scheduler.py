"""One scheduler per data directory (found by the stop 21 tester: a second one started by
hand beside a running node synced the same directory at once and, on exiting, removed the
first one's pid file, so 'diwan status' and 'diwan stop' lost track of it). Real
scheduler processes on a real data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.base import runstate
from app.core.base.datadir import DataDir, open_datadir

pytestmark = [pytest.mark.integration]


def _scheduler(data_dir: Path, *, read: bool = False) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    env["DIWAN_DATA_DIR"] = str(data_dir)
    return subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, text=True,
                            stdout=subprocess.PIPE if read else subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_running(dd: DataDir, proc: subprocess.Popen[str]) -> None:
    """Until ``proc`` is the data directory's running scheduler (30 s at most, and it must
    not exit meanwhile)."""
    deadline = time.monotonic() + 30
    while runstate.running(dd, "scheduler") != proc.pid:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)


def test_a_second_scheduler_is_refused_and_leaves_the_first_one_be(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    open_datadir(data_dir)
    dd = DataDir(data_dir)
    first = _scheduler(data_dir)
    try:
        _wait_running(dd, first)
        second = _scheduler(data_dir, read=True)
        out, _ = second.communicate(timeout=30)
        assert second.returncode != 0
        assert "a scheduler already runs" in out and f"pid {first.pid}" in out, out
        assert "Traceback" not in out
        assert first.poll() is None
        assert runstate.running(dd, "scheduler") == first.pid  # its pid file is still there
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=30)
    assert runstate.read_pid(dd, "scheduler") is None  # the first one cleared its own
    again = _scheduler(data_dir)  # the lock went with the process: a new one starts
    try:
        _wait_running(dd, again)
    finally:
        os.killpg(again.pid, signal.SIGTERM)
        again.wait(timeout=30)
