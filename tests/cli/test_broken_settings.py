"""``diwan status``, ``stop`` and ``doctor`` when ``diwan.toml`` breaks while a node runs.

A running node keeps the settings it started with, so a file edited into an invalid
state (or removed, or not UTF-8) must neither keep the node from being stopped nor
print a traceback (found by the stop 20 and stop 21 testers). The node's processes are
stood in for by real processes whose command lines carry each role's marker, as
``runstate`` recognises them, recorded in the data directory's pid files; the CLI runs
as a real subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.base import runstate
from app.core.base.datadir import DataDir

ROLES = {"admin": "create_admin_app", "peer": "create_peer_app", "scheduler": "scheduler"}


def _break_value(toml: Path) -> str:
    toml.write_text(toml.read_text().replace("\npage_size = 10\n", '\npage_size = "many"\n'))
    return "page_size"


def _break_encoding(toml: Path) -> str:
    with open(toml, "ab") as f:
        f.write(b"# \xff\xfe\n")
    return "UTF-8"


def _break_syntax(toml: Path) -> str:
    with open(toml, "a") as f:
        f.write("page_size = = 3\n")
    return "diwan.toml"


def _remove(toml: Path) -> str:
    toml.unlink()
    return "no diwan.toml"


def _make_directory(toml: Path) -> str:
    toml.unlink()
    toml.mkdir()
    return "not a regular file"


def _make_fifo(toml: Path) -> str:
    toml.unlink()
    os.mkfifo(toml)  # reading it blocked every command for good, stop too
    return "not a regular file"


BREAKS: dict[str, Callable[[Path], str]] = {
    "a bad value": _break_value, "not UTF-8": _break_encoding, "bad TOML": _break_syntax,
    "removed": _remove, "a directory": _make_directory, "a FIFO": _make_fifo}


def _diwan(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    return subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), *args],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Path, dict[str, subprocess.Popen[bytes]]]]:
    """An initialised data directory whose pid files name three live stand-in processes."""
    data_dir = tmp_path / "node"
    assert _diwan(data_dir, "init").returncode == 0
    dd = DataDir(data_dir)
    procs = {}
    for role, marker in ROLES.items():
        procs[role] = subprocess.Popen(  # 'exec -a' puts the marker in the command line
            ["bash", "-c", f"exec -a 'diwan-{marker}' sleep 120"], start_new_session=True)
        runstate.write_pid(dd, role, procs[role].pid)
    yield data_dir, procs
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("how", BREAKS)
def test_status_lists_the_processes_and_stop_stops_them(
        node: tuple[Path, dict[str, subprocess.Popen[bytes]]], how: str) -> None:
    data_dir, procs = node
    assert json.loads(_diwan(data_dir, "status", "--json").stdout)["processes"]["peer"]["running"]
    said = BREAKS[how](data_dir / "diwan.toml")
    st = _diwan(data_dir, "status", "--json")
    assert st.returncode == 2, st.stderr
    assert "Traceback" not in st.stderr
    shown = json.loads(st.stdout)
    assert said in shown["settings_error"]
    assert {r: shown["processes"][r]["pid"] for r in ROLES} == {r: p.pid for r, p in procs.items()}
    doctor = _diwan(data_dir, "doctor")
    assert doctor.returncode != 0 and "Traceback" not in doctor.stderr
    stopped = _diwan(data_dir, "stop", "--timeout", "10")
    assert stopped.returncode == 0, stopped.stderr
    assert "Traceback" not in stopped.stderr and said in stopped.stdout
    for proc in procs.values():
        assert proc.wait(timeout=15) == -signal.SIGTERM
    after = _diwan(data_dir, "status")
    assert after.returncode == 2 and "keep the settings" not in after.stdout


def test_doctor_reports_settings_that_no_longer_load(tmp_path: Path) -> None:
    """The admin API's /status (this report) said ok while the file no longer loaded."""
    from app.core.base import settingsfile
    from app.core.upkeep.doctor import report

    data_dir = tmp_path / "node"
    assert _diwan(data_dir, "init").returncode == 0
    dd = DataDir(data_dir)
    assert report(dd)["ok"]
    settingsfile.pin(data_dir / "diwan.toml")  # as a running server does
    try:
        _break_value(data_dir / "diwan.toml")
        running = DataDir(data_dir)  # still loads: the pinned settings
        found = report(running)
        assert not found["ok"]
        assert any("page_size" in p and "as they are now" in p for p in found["problems"])
    finally:
        settingsfile.unpin_all()
    (data_dir / "diwan.toml").unlink()
    assert any("no diwan.toml" in p for p in report(dd)["problems"])
