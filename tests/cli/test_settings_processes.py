"""A bad setting or an exposed admin API stops every process with one line (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
HUGE = "99999999999999999999"
REPO = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    return REPO


def _run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    full.update(DIWAN_DATA_DIR=str(data_dir), PYTHONPATH=str(repo_root()), **env)
    with subprocess.Popen(args, env=full, cwd=data_dir, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # it started after all: stop all of it
            os.killpg(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    result = _run([str(BIN / "diwan"), "init"], tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


SYNC = ("DIWAN_SYNC_INTERVAL", "sync_interval", "an integer from 2 to 2592000 (seconds)")


@pytest.mark.parametrize("command", [
    ["diwan", "config", "show"], ["diwan", "up"], ["python", "-m", "scheduler"],
    ["gunicorn", "--config", "gunicorn.conf.py", "app:create_peer_app()"],
], ids=lambda c: c[-1])
def test_an_out_of_range_setting_stops_each_process(node_dir: Path, command: list[str]) -> None:
    args = [str(BIN / command[0]), *command[1:]]
    if command[0] == "gunicorn":
        args[2] = str(repo_root() / "gunicorn.conf.py")
    result = _run(args, node_dir, DIWAN_SYNC_INTERVAL=HUGE, DIWAN_ROLE="peer")
    _one_line_error(result, *SYNC, HUGE)


def test_a_bad_value_in_the_file_names_the_file(node_dir: Path) -> None:
    (node_dir / "diwan.toml").write_text("sync_timeout = 0\n")
    result = _run([str(BIN / "diwan"), "config", "show"], node_dir)
    assert result.returncode == 2
    _one_line_error(result, str(node_dir / "diwan.toml"), "sync_timeout",
                    "an integer from 1 to 600 (seconds)", "not 0")


def test_the_admin_api_off_loopback_is_refused_without_admin_expose(node_dir: Path) -> None:
    conf = str(repo_root() / "gunicorn.conf.py")
    for args in ([str(BIN / "diwan"), "up"],
                 [str(BIN / "gunicorn"), "--config", conf, "app:create_admin_app()"]):
        result = _run(args, node_dir, DIWAN_ADMIN_HOST="0.0.0.0", DIWAN_ROLE="admin")
        _one_line_error(result, "admin_host", "'0.0.0.0'", "admin_expose = true")


def test_a_deliberately_exposed_admin_api_warns_at_every_start(node_dir: Path) -> None:
    """Gunicorn's own config file is read as gunicorn reads it (nothing is bound here)."""
    load = ("import runpy; c = runpy.run_path('gunicorn.conf.py'); print(c['bind'])")
    result = subprocess.run([sys.executable, "-c", load], cwd=repo_root(), capture_output=True,
                            text=True, check=False, timeout=60,
                            env={**os.environ, "DIWAN_DATA_DIR": str(node_dir),
                                 "DIWAN_ADMIN_HOST": "0.0.0.0", "DIWAN_ADMIN_EXPOSE": "true",
                                 "DIWAN_ROLE": "admin"})
    assert result.returncode == 0, result.stderr
    assert "['0.0.0.0:8888']" in result.stdout
    assert "WARNING: the admin API listens on 0.0.0.0 (admin_expose = true)" in result.stderr


def test_status_shows_an_exposed_admin_api_and_the_free_space(node_dir: Path) -> None:
    result = _run([str(BIN / "diwan"), "status"], node_dir, DIWAN_ADMIN_HOST="0.0.0.0",
                  DIWAN_ADMIN_EXPOSE="true")
    assert result.returncode == 0, result.stderr
    assert "WARNING: WARNING: the admin API listens on 0.0.0.0" not in result.stdout
    assert "the admin API listens on 0.0.0.0 (admin_expose = true)" in result.stdout
    assert "disk free:" in result.stdout
