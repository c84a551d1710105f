"""The systemd units in deploy/ pass ``systemd-analyze verify`` and stay hardened.

The units name the shared install's binaries (/opt/diwan/.venv/bin/...), which
do not exist here, so the test verifies copies whose ``ExecStart=`` points at
this virtualenv's binaries instead; everything else is verified as written.
Any output at all from ``verify`` counts as a failure: it exits 0 on unknown
keys or unparsable values and only prints a warning.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
INSTALLED_BIN = "/opt/diwan/.venv/bin/"
VENV_BIN = str(Path(sys.executable).parent) + "/"  # not resolved: the venv's own bin
ROLES = ("admin", "peer", "scheduler")
INSTANCE = "tmp-x"  # the data directory /tmp/x
SERVICES = [f"diwan-{role}@.service" for role in ROLES]
UNITS = [*SERVICES, "diwan@.target"]

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")


def instance(template: str) -> str:
    return template.replace("@.", f"@{INSTANCE}.")


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (systemd allows a key several times)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


@pytest.fixture()
def units(tmp_path: Path) -> Path:
    """Copies of the units with ExecStart= pointing at this virtualenv."""
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        if name in SERVICES:
            assert text.count(f"ExecStart={INSTALLED_BIN}") == 1, name
        (tmp_path / name).write_text(text.replace(INSTALLED_BIN, VENV_BIN))
    return tmp_path


def problems(path: Path) -> str:
    """Everything ``systemd-analyze verify`` has to say (empty: the unit is fine)."""
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60)
    said = (done.stdout + done.stderr).strip()
    return said or ("" if done.returncode == 0 else f"exit status {done.returncode}")


@needs_analyze
@pytest.mark.parametrize("template", UNITS)
def test_units_verify(units: Path, template: str) -> None:
    assert problems(units / instance(template)) == ""


@needs_analyze
@pytest.mark.parametrize(("template", "old", "new"), [
    ("diwan-admin@.service", "ProtectSystem=", "ProtectSystm="),        # unknown key
    ("diwan-peer@.service", "Restart=on-failure", "Restart=sometimes"),  # bad value
    ("diwan-scheduler@.service", VENV_BIN + "python", "/nonexistent/python"),  # no binary
    ("diwan-admin@.service", "[Service]", "[Servce]"),                   # unknown section
    ("diwan@.target", "Wants=", "Wans="),                                # unknown key
])
def test_a_broken_unit_fails_verification(units: Path, template: str, old: str,
                                          new: str) -> None:
    path = units / template
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    assert problems(units / instance(template)) != ""


def _supports_offline_security() -> bool:
    if shutil.which("systemd-analyze") is None:
        return False
    usage = subprocess.run(["systemd-analyze", "--help"], capture_output=True, text=True)
    return "--offline" in usage.stdout and "--threshold" in usage.stdout


def exposure_ok(path: Path) -> bool:
    """``systemd-analyze security`` rates the unit's exposure at most 2.0 (of 10)."""
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                           str(path)], capture_output=True, text=True, timeout=60)
    return done.returncode == 0


@pytest.mark.skipif(not _supports_offline_security(),
                    reason="systemd-analyze security --offline/--threshold unavailable")
@pytest.mark.parametrize("template", SERVICES)
def test_services_are_hardened(units: Path, template: str) -> None:
    assert exposure_ok(units / instance(template))
    hardening = ("ProtectSystem=", "PrivateTmp=", "NoNewPrivileges=", "SystemCallFilter=",
                 "CapabilityBoundingSet=", "RestrictAddressFamilies=", "PrivateDevices=")
    path = units / template
    kept = [line for line in path.read_text().splitlines() if not line.startswith(hardening)]
    path.write_text("\n".join(kept) + "\n")
    assert not exposure_ok(units / instance(template))  # the check can fail


@pytest.mark.parametrize("role", ROLES)
def test_each_service_runs_in_its_data_directory(role: str) -> None:
    unit = parse(DEPLOY / f"diwan-{role}@.service")
    service, install = unit["Service"], unit["Install"]
    assert service["WorkingDirectory"] == ["/%I"]
    assert "DIWAN_DATA_DIR=/%I" in service["Environment"]
    assert f"DIWAN_ROLE={role}" in service["Environment"]
    assert service["ReadWritePaths"] == ["/%I"]
    assert unit["Unit"]["PartOf"] == ["diwan@%i.target"]
    assert install["WantedBy"] == ["diwan@%i.target"]
    for key, value in [("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                       ("PrivateTmp", "yes"), ("UMask", "0077"), ("Restart", "on-failure")]:
        assert service[key] == [value], key
    [exec_start] = service["ExecStart"]
    if role == "scheduler":
        assert exec_start == "/opt/diwan/.venv/bin/python -m scheduler"
    else:
        assert exec_start == ("/opt/diwan/.venv/bin/gunicorn --config /opt/diwan/gunicorn.conf.py"
                              f" 'app:create_{role}_app()'")
        assert service["Type"] == ["notify"]


def test_the_target_groups_the_three_services() -> None:
    target = parse(DEPLOY / "diwan@.target")
    wanted = " ".join(target["Unit"]["Wants"]).split()
    assert sorted(wanted) == sorted(f"diwan-{role}@%i.service" for role in ROLES)
    assert target["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("template", UNITS)
def test_every_directive_is_commented(template: str) -> None:
    lines = (DEPLOY / template).read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"[A-Za-z]+=", line):
            assert lines[number - 1].startswith("#"), f"{template}:{number + 1}: {line}"


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="no systemd-escape")
def test_the_instance_name_is_the_escaped_path() -> None:
    """The README's example: diwan@home-alice-diwan.target is /home/alice/diwan."""
    escaped = subprocess.run(["systemd-escape", "--path", "/home/alice/diwan"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert escaped == "home-alice-diwan"
    assert "diwan@home-alice-diwan.target" in (DEPLOY / "README.md").read_text()
