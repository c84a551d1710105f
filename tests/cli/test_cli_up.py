"""``diwan up`` really starts admin, peer and scheduler, and SIGTERM really stops them.

Runs the console script as a subprocess in a temporary data directory on free
127.0.0.1 ports, waits for both /health endpoints and the scheduler's
heartbeat file, then sends SIGTERM to ``diwan up`` only: it must pass it on to
honcho, which stops the three processes, frees the ports and exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def diwan_command() -> list[str]:
    script = Path(sys.executable).parent / "diwan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def processes_in(data_dir: Path) -> list[int]:
    """Our processes whose working directory is ``data_dir`` (honcho, gunicorn, scheduler)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == data_dir:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def healthy(port: int) -> bool:
    try:
        return requests.get(f"http://{LOOPBACK}:{port}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_until(check, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"diwan up exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting:\n{log.read_text()}")
        time.sleep(0.2)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.connect((LOOPBACK, port))
            return False
        except ConnectionRefusedError:
            pass
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOOPBACK, port))  # raises if something still listens there
    return True


def node_env(admin_port: int, peer_port: int, **extra: str) -> dict[str, str]:
    """This process's environment without DIWAN_*, plus a small node on loopback ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    env.update(DIWAN_ADMIN_HOST=LOOPBACK, DIWAN_ADMIN_PORT=str(admin_port),
               DIWAN_PEER_HOST=LOOPBACK, DIWAN_PEER_PORT=str(peer_port),
               DIWAN_WORKERS="1", DIWAN_THREADS="2", **extra)
    return env


def start_up(data_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``diwan up`` in its own session, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([*diwan_command(), "--data-dir", str(data_dir), "up"],
                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def wait_ready(data_dir: Path, admin_port: int, peer_port: int, proc: subprocess.Popen[bytes],
               log: Path) -> None:
    """Both /health endpoints answer and the scheduler has beaten once."""
    wait_until(lambda: healthy(admin_port) and healthy(peer_port), proc, log)
    wait_until((data_dir / "state" / "scheduler.alive").exists, proc, log)


def test_up_starts_the_three_processes_and_sigterm_stops_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    admin_port, peer_port = free_port(), free_port()
    env = node_env(admin_port, peer_port)
    log = tmp_path / "up.log"
    proc = start_up(data_dir, env, log)
    try:
        wait_ready(data_dir, admin_port, peer_port, proc, log)
        assert len(processes_in(data_dir)) >= 4  # honcho + 2 gunicorn masters + scheduler
        printed = log.read_text()
        assert f"http://{LOOPBACK}:{admin_port}" in printed
        assert str(data_dir / "admin.token") in printed
        assert (data_dir / "admin.token").read_text().strip() not in printed

        os.kill(proc.pid, signal.SIGTERM)
        # a stop asked for is a clean end: 0, not honcho's 143 ('make run' said "Error 143")
        assert proc.wait(timeout=30) == 0, log.read_text()
        assert port_is_free(admin_port) and port_is_free(peer_port)
        assert processes_in(data_dir) == []
        assert "SIGTERM received" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in processes_in(data_dir):
            os.kill(pid, signal.SIGKILL)


def _diwan(data_dir: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*diwan_command(), "--data-dir", str(data_dir), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_status_shows_the_processes_and_stop_stops_them(tmp_path: Path) -> None:
    """Issue 11: diwan status (human and --json) and diwan stop on a real node."""
    data_dir = tmp_path / "node"
    admin_port, peer_port = free_port(), free_port()
    env = node_env(admin_port, peer_port, DIWAN_LOG_FORMAT="json")
    assert _diwan(data_dir, "init", env=env).returncode == 0
    before = json.loads(_diwan(data_dir, "status", "--json", env=env).stdout)
    assert before["running"] is False
    assert all(p["pid"] is None for p in before["processes"].values())
    log = tmp_path / "up.log"
    proc = start_up(data_dir, env, log)
    try:
        wait_ready(data_dir, admin_port, peer_port, proc, log)
        st = json.loads(_diwan(data_dir, "status", "--json", env=env).stdout)
        assert st["running"] is True, st
        pids = {role: st["processes"][role]["pid"] for role in ("admin", "peer", "scheduler")}
        assert st["processes"]["up"]["pid"] == proc.pid
        assert set(pids.values()) <= set(processes_in(data_dir))
        assert st["admin_url"] == f"http://{LOOPBACK}:{admin_port}"
        assert st["peer_urls"] == [f"http://{LOOPBACK}:{peer_port}"]
        assert st["posts"] == {"files": 0, "bytes": 0}
        # From a shell without the port variables the node was started with: the URLs
        # are where it listens (state/run/<role>.bind.json), not diwan.toml's defaults.
        bare = {k: v for k, v in env.items() if k not in ("DIWAN_ADMIN_PORT", "DIWAN_PEER_PORT")}
        seen = json.loads(_diwan(data_dir, "status", "--json", env=bare).stdout)
        assert seen["admin_url"] == f"http://{LOOPBACK}:{admin_port}", seen
        assert seen["peer_urls"] == [f"http://{LOOPBACK}:{peer_port}"], seen
        link = json.loads(_diwan(data_dir, "open", "--json", env=bare).stdout)
        assert link["url"].startswith(f"http://{LOOPBACK}:{admin_port}/login?code="), link
        assert link["running"] is True
        human = _diwan(data_dir, "status", env=env).stdout
        assert "running" in human and f"pid {pids['scheduler']}" in human
        again = subprocess.run([*diwan_command(), "--data-dir", str(data_dir), "up"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 4 and "already runs" in again.stderr  # no second node
        lines = [line for line in log.read_text().splitlines() if "scheduler.1" in line
                 and "{" in line]
        assert lines and all(json.loads(line.split("| ", 1)[1])["level"] for line in lines)
        assert not any("heartbeat" in line or "Running job" in line
                       for line in log.read_text().splitlines())  # debug only

        stopped = _diwan(data_dir, "stop", env=env)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
        assert proc.wait(timeout=30) == 0
        assert processes_in(data_dir) == []
        assert port_is_free(admin_port) and port_is_free(peer_port)
        after = json.loads(_diwan(data_dir, "status", "--json", env=env).stdout)
        assert after["running"] is False
        assert "no node runs" in _diwan(data_dir, "stop", env=env).stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in processes_in(data_dir):
            os.kill(pid, signal.SIGKILL)


def test_a_broken_settings_file_does_not_keep_the_node_running(tmp_path: Path) -> None:
    """Found by the stop 20 tester: with diwan.toml edited into an invalid state while the
    node ran (its processes keep the settings they started with), 'diwan status' and
    'diwan stop' refused with the settings error, so the node could not be stopped."""
    data_dir = tmp_path / "node"
    admin_port, peer_port = free_port(), free_port()
    env = node_env(admin_port, peer_port)
    assert _diwan(data_dir, "init", env=env).returncode == 0
    log = tmp_path / "up.log"
    proc = start_up(data_dir, env, log)
    try:
        wait_ready(data_dir, admin_port, peer_port, proc, log)
        toml = data_dir / "diwan.toml"
        text = toml.read_text()
        assert "\npage_size = 10\n" in text
        toml.write_text(text.replace("\npage_size = 10\n", '\npage_size = "many"\n'))
        st = _diwan(data_dir, "status", "--json", env=env)
        assert st.returncode == 2
        shown = json.loads(st.stdout)
        assert "page_size" in shown["settings_error"]
        assert shown["processes"]["up"]["pid"] == proc.pid
        assert all(shown["processes"][r]["running"] for r in ("admin", "peer", "scheduler"))
        human = _diwan(data_dir, "status", env=env)
        assert "page_size" in human.stdout and "pid" in human.stdout
        stopped = _diwan(data_dir, "stop", env=env)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
        assert "warning:" in stopped.stdout and "page_size" in stopped.stdout
        assert proc.wait(timeout=30) == 0
        assert processes_in(data_dir) == []
        assert port_is_free(admin_port) and port_is_free(peer_port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
