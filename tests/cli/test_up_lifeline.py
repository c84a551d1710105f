"""One node per data directory; processes die with ``diwan up`` however it dies (issue 10, item 8).

Real ``diwan up`` subprocesses on free 127.0.0.1 ports: SIGKILL of ``diwan up``
stops admin, peer and scheduler, and a second ``diwan up`` then starts cleanly
(one scheduler, not two); a second ``diwan up`` while one runs names it; a port
in use is a one-line error naming the setting.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli.test_cli_up import (
    LOOPBACK,
    diwan_command,
    free_port,
    healthy,
    processes_in,
    wait_until,
)

pytestmark = pytest.mark.integration


def _env(admin_port: int, peer_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    env.update(DIWAN_ADMIN_HOST=LOOPBACK, DIWAN_ADMIN_PORT=str(admin_port),
               DIWAN_PEER_HOST=LOOPBACK, DIWAN_PEER_PORT=str(peer_port),
               DIWAN_WORKERS="1", DIWAN_THREADS="2")
    return env


@contextmanager
def _up(data_dir: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([*diwan_command(), "--data-dir", str(data_dir), "up"],
                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in processes_in(data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _schedulers(data_dir: Path) -> int:
    count = 0
    for pid in processes_in(data_dir):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        count += b"scheduler" in cmdline
    return count


def _gone(data_dir: Path, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while processes_in(data_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_sigkill_of_up_stops_the_node_and_a_new_up_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    admin_port, peer_port = free_port(), free_port()
    env, log = _env(admin_port, peer_port), tmp_path / "up.log"
    with _up(data_dir, env, log) as first:
        wait_until(lambda: healthy(admin_port) and healthy(peer_port), first, log)
        wait_until(lambda: _schedulers(data_dir) == 1, first, log)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert _gone(data_dir), f"left running: {processes_in(data_dir)}\n{log.read_text()}"
    with _up(data_dir, env, log) as second:
        wait_until(lambda: healthy(admin_port) and healthy(peer_port), second, log)
        wait_until(lambda: _schedulers(data_dir) >= 1, second, log)
        assert _schedulers(data_dir) == 1
        os.kill(second.pid, signal.SIGTERM)
        second.wait(timeout=30)


def test_a_second_up_names_the_running_node(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    admin_port, peer_port = free_port(), free_port()
    env, log = _env(admin_port, peer_port), tmp_path / "up.log"
    with _up(data_dir, env, log) as first:
        wait_until(lambda: healthy(admin_port) and healthy(peer_port), first, log)
        second = subprocess.run([*diwan_command(), "--data-dir", str(data_dir), "up"],
                                capture_output=True, env=env, timeout=60, text=True)
        assert second.returncode != 0
        assert "already runs" in second.stderr, second.stderr
        assert f"PID {first.pid}" in second.stderr and str(admin_port) in second.stderr
        assert healthy(admin_port) and _schedulers(data_dir) == 1


def test_a_port_in_use_is_a_one_line_error_naming_the_setting(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    admin_port, peer_port = free_port(), free_port()
    with socket.socket() as taken:
        taken.bind((LOOPBACK, peer_port))
        taken.listen()
        result = subprocess.run([*diwan_command(), "--data-dir", str(data_dir), "up"],
                                capture_output=True, env=_env(admin_port, peer_port),
                                timeout=60, text=True)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {peer_port}" in lines[0] and "peer_port" in lines[0], lines
    assert processes_in(data_dir) == []
